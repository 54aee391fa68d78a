package routes

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestDiffRoutes(t *testing.T) {
	cluster := pfx("10.42.0.0/16")
	hostgw := route{Dst: pfx("10.42.2.0/24"), Gateway: addr("192.168.1.2"), Dev: "eth0"}
	moved := route{Dst: pfx("10.42.2.0/24"), Gateway: addr("192.168.1.9"), Dev: "eth0"}
	overlay := route{Dst: pfx("10.42.3.0/24"), Gateway: addr("10.42.3.0"), Dev: "vx", OnLink: true}
	notOnlink := overlay
	notOnlink.OnLink = false
	otherMetric := hostgw
	otherMetric.Metric = 100
	stale := route{Dst: pfx("10.42.9.0/24"), Gateway: addr("192.168.1.9"), Dev: "eth0"}
	outside := route{Dst: pfx("10.99.0.0/24"), Gateway: addr("192.168.1.9"), Dev: "eth0"}
	wider := route{Dst: pfx("10.0.0.0/8"), Gateway: addr("192.168.1.9"), Dev: "eth0"}

	tests := []struct {
		name             string
		current, desired []route
		want             routeOps
	}{
		{"nothing", nil, nil, routeOps{}},
		{"all in place", []route{hostgw, overlay}, []route{hostgw, overlay}, routeOps{}},
		{"missing", []route{hostgw}, []route{hostgw, overlay}, routeOps{Replace: []route{overlay}}},
		{"gateway changed", []route{hostgw}, []route{moved}, routeOps{Replace: []route{moved}}},
		{"onlink lost", []route{notOnlink}, []route{overlay}, routeOps{Replace: []route{overlay}}},
		{"other metric: delete it, add ours", []route{otherMetric}, []route{hostgw},
			routeOps{Replace: []route{hostgw}, Delete: []route{otherMetric}}},
		{"stale route deleted", []route{hostgw, stale}, []route{hostgw}, routeOps{Delete: []route{stale}}},
		{"routes outside the cluster CIDR are not ours", []route{outside, wider}, nil, routeOps{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := diffRoutes(cluster, tc.current, tc.desired)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestDiffFDB(t *testing.T) {
	peerB := vxlanPeer{Node: "b", IP: addr("172.16.0.2"), Gateway: addr("10.42.2.0"), MAC: "0e:4b:ac:10:00:02"}
	peerC := vxlanPeer{Node: "c", IP: addr("172.16.0.3"), Gateway: addr("10.42.3.0"), MAC: "0e:4b:ac:10:00:03"}
	b := fdbEntry{MAC: peerB.MAC, Dst: peerB.IP, Permanent: true}
	c := fdbEntry{MAC: peerC.MAC, Dst: peerC.IP, Permanent: true}
	bLearnt := fdbEntry{MAC: peerB.MAC, Dst: peerB.IP}
	bElsewhere := fdbEntry{MAC: peerB.MAC, Dst: addr("172.16.0.99"), Permanent: true}
	flood := fdbEntry{MAC: "00:00:00:00:00:00", Dst: addr("172.16.0.7"), Permanent: true}
	tests := []struct {
		name         string
		current      []fdbEntry
		peers        []vxlanPeer
		del, replace []fdbEntry
	}{
		{"empty", nil, nil, nil, nil},
		{"in place", []fdbEntry{b, c}, []vxlanPeer{peerB, peerC}, nil, nil},
		{"missing", []fdbEntry{b}, []vxlanPeer{peerB, peerC}, nil, []fdbEntry{c}},
		{"not permanent", []fdbEntry{bLearnt}, []vxlanPeer{peerB}, nil, []fdbEntry{b}},
		{"peer moved", []fdbEntry{bElsewhere}, []vxlanPeer{peerB}, []fdbEntry{bElsewhere}, []fdbEntry{b}},
		{"peer gone and foreign entries", []fdbEntry{b, c, flood}, []vxlanPeer{peerC}, []fdbEntry{b, flood}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			del, replace := diffFDB(tc.current, tc.peers)
			if !reflect.DeepEqual(del, tc.del) || !reflect.DeepEqual(replace, tc.replace) {
				t.Errorf("got del %v replace %v\nwant del %v replace %v", del, replace, tc.del, tc.replace)
			}
		})
	}
}

func TestDiffNeigh(t *testing.T) {
	peerB := vxlanPeer{Node: "b", IP: addr("172.16.0.2"), Gateway: addr("10.42.2.0"), MAC: "0e:4b:ac:10:00:02"}
	peerC := vxlanPeer{Node: "c", IP: addr("172.16.0.3"), Gateway: addr("10.42.3.0"), MAC: "0e:4b:ac:10:00:03"}
	b := neighEntry{Dst: peerB.Gateway, MAC: peerB.MAC, Permanent: true}
	c := neighEntry{Dst: peerC.Gateway, MAC: peerC.MAC, Permanent: true}
	bStale := neighEntry{Dst: peerB.Gateway, MAC: peerB.MAC}
	bWrongMAC := neighEntry{Dst: peerB.Gateway, MAC: "0e:4b:00:00:00:00", Permanent: true}
	stray := neighEntry{Dst: addr("10.42.7.9"), Permanent: false}
	tests := []struct {
		name         string
		current      []neighEntry
		peers        []vxlanPeer
		del, replace []neighEntry
	}{
		{"empty", nil, nil, nil, nil},
		{"in place", []neighEntry{b, c}, []vxlanPeer{peerB, peerC}, nil, nil},
		{"missing", []neighEntry{c}, []vxlanPeer{peerB, peerC}, nil, []neighEntry{b}},
		{"not permanent", []neighEntry{bStale}, []vxlanPeer{peerB}, nil, []neighEntry{b}},
		{"wrong MAC", []neighEntry{bWrongMAC}, []vxlanPeer{peerB}, nil, []neighEntry{b}},
		{"stray and gone", []neighEntry{b, c, stray}, []vxlanPeer{peerC}, []neighEntry{b, stray}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			del, replace := diffNeigh(tc.current, tc.peers)
			if !reflect.DeepEqual(del, tc.del) || !reflect.DeepEqual(replace, tc.replace) {
				t.Errorf("got del %v replace %v\nwant del %v replace %v", del, replace, tc.del, tc.replace)
			}
		})
	}
}

func TestDiffAddrs(t *testing.T) {
	tests := []struct {
		name    string
		current []string
		want    string
		del     []string
		add     bool
	}{
		{"none wanted, none there", nil, "", nil, false},
		{"add", nil, "10.42.1.0", nil, true},
		{"there", []string{"10.42.1.0/32"}, "10.42.1.0", nil, false},
		{"podCIDR changed", []string{"10.42.9.0/32"}, "10.42.1.0", []string{"10.42.9.0/32"}, true},
		{"wrong length", []string{"10.42.1.0/24"}, "10.42.1.0", []string{"10.42.1.0/24"}, true},
		{"no longer wanted", []string{"10.42.1.0/32"}, "", []string{"10.42.1.0/32"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cur []netip.Prefix
			for _, c := range tc.current {
				cur = append(cur, pfx(c))
			}
			var want netip.Addr
			if tc.want != "" {
				want = addr(tc.want)
			}
			del, add := diffAddrs(cur, want)
			var delS []string
			for _, d := range del {
				delS = append(delS, d.String())
			}
			if !reflect.DeepEqual(delS, tc.del) || add != tc.add {
				t.Errorf("got del %v add %v, want del %v add %v", delS, add, tc.del, tc.add)
			}
		})
	}
}

func TestVXLANMismatch(t *testing.T) {
	cfg := testConfig()
	good := linkState{Kind: "vxlan", VNI: 1, Local: cfg.NodeIP, Port: 8472, MAC: vxlanMAC(cfg.NodeIP), Up: true}
	tests := []struct {
		name     string
		mod      func(*linkState)
		recreate bool
		err      bool
	}{
		{"matches", func(*linkState) {}, false, false},
		{"down and wrong MAC are fixed in place", func(l *linkState) { l.Up = false; l.MAC = "02:00:00:00:00:01" }, false, false},
		{"other VNI", func(l *linkState) { l.VNI = 2 }, true, false},
		{"other local address", func(l *linkState) { l.Local = addr("192.168.1.77") }, true, false},
		{"no local address", func(l *linkState) { l.Local = netip.Addr{} }, true, false},
		{"other port", func(l *linkState) { l.Port = 4789 }, true, false},
		{"learning", func(l *linkState) { l.Learning = true }, true, false},
		{"not vxlan", func(l *linkState) { l.Kind = "bridge" }, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := good
			tc.mod(&l)
			reason, err := vxlanMismatch(l, cfg)
			if (err != nil) != tc.err || (reason != "") != tc.recreate {
				t.Errorf("got reason %q err %v, want recreate=%v err=%v", reason, err, tc.recreate, tc.err)
			}
		})
	}
}
