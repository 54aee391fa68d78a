package routes

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// The inputs are output of iproute2 6.1 ("ip -j", "bridge -j").

func TestParseRoutes(t *testing.T) {
	out := `[{"dst":"10.77.3.0/24","gateway":"10.77.3.0","dev":"vxt","flags":["onlink"]},` +
		`{"dst":"10.77.2.0/24","gateway":"172.30.1.2","dev":"d0","protocol":"221","flags":[]},` +
		`{"dst":"10.77.4.5","gateway":"172.30.1.2","dev":"d0","metric":5,"flags":[]},` +
		`{"dst":"default","gateway":"172.30.1.254","dev":"d0","flags":[]},` +
		`{"dst":"10.77.6.0/24","nexthops":[{"gateway":"172.30.1.2","dev":"d0"}],"flags":[]}]`
	got, err := parseRoutes([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []route{
		{Dst: pfx("10.77.3.0/24"), Gateway: addr("10.77.3.0"), Dev: "vxt", OnLink: true},
		{Dst: pfx("10.77.2.0/24"), Gateway: addr("172.30.1.2"), Dev: "d0"},
		{Dst: pfx("10.77.4.5/32"), Gateway: addr("172.30.1.2"), Dev: "d0", Metric: 5},
		{Dst: pfx("10.77.6.0/24")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, empty := range []string{"", "\n", "[]"} {
		if rs, err := parseRoutes([]byte(empty)); err != nil || len(rs) != 0 {
			t.Errorf("parseRoutes(%q) = %v, %v", empty, rs, err)
		}
	}
	if _, err := parseRoutes([]byte("dev d0")); err == nil {
		t.Error("parseRoutes accepted text output")
	}
}

func TestParseAddrs(t *testing.T) {
	out := `[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"addr_info":[` +
		`{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},` +
		`{"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},` +
		`{"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST"],"mtu":9000,"addr_info":[` +
		`{"family":"inet","local":"172.30.1.1","prefixlen":24,"scope":"global"},` +
		`{"family":"inet","local":"172.30.9.1","prefixlen":16,"scope":"global","secondary":true}]},` +
		`{"ifindex":3,"ifname":"vxt","flags":["UP"],"mtu":1450,"addr_info":[` +
		`{"family":"inet","local":"10.77.1.0","prefixlen":32,"scope":"global"}]}]`
	got, err := parseAddrs([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []hostAddr{
		{Dev: "lo", Prefix: pfx("127.0.0.1/8"), Scope: "host", Up: true, MTU: 65536},
		{Dev: "eth0", Prefix: pfx("172.30.1.1/24"), Scope: "global", Up: false, MTU: 9000},
		{Dev: "eth0", Prefix: pfx("172.30.9.1/16"), Scope: "global", Up: false, MTU: 9000},
		{Dev: "vxt", Prefix: pfx("10.77.1.0/32"), Scope: "global", Up: true, MTU: 1450},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestParseLink(t *testing.T) {
	vx := `[{"ifindex":2,"ifname":"vxt","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,` +
		`"address":"0e:4b:ac:1e:01:01","linkinfo":{"info_kind":"vxlan","info_data":{"id":1,"local":"172.30.1.1",` +
		`"port_range":{"low":0,"high":0},"port":8472,"learning":false,"ttl":0,"ageing":300}}}]`
	got, err := parseLink([]byte(vx))
	if err != nil {
		t.Fatal(err)
	}
	want := linkState{Kind: "vxlan", VNI: 1, Local: addr("172.30.1.1"), Port: 8472, MAC: "0e:4b:ac:1e:01:01", Up: true}
	if *got != want {
		t.Errorf("got %+v\nwant %+v", *got, want)
	}

	learning := `[{"ifname":"vxt","flags":["BROADCAST"],"address":"0e:4b:ac:1e:01:01",` +
		`"linkinfo":{"info_kind":"vxlan","info_data":{"id":7,"port":4789,"learning":true}}}]`
	got, err = parseLink([]byte(learning))
	if err != nil {
		t.Fatal(err)
	}
	want = linkState{Kind: "vxlan", VNI: 7, Port: 4789, Learning: true, MAC: "0e:4b:ac:1e:01:01"}
	if *got != want {
		t.Errorf("got %+v\nwant %+v", *got, want)
	}

	plain := `[{"ifname":"eth0","flags":["UP"],"address":"02:00:00:00:00:01"}]`
	got, err = parseLink([]byte(plain))
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != "" || !got.Up {
		t.Errorf("plain device parsed as %+v", *got)
	}
	if _, err := parseLink([]byte("[]")); err == nil {
		t.Error("parseLink accepted an empty list")
	}
}

func TestParseFDBAndNeigh(t *testing.T) {
	fdb := `[{"mac":"0E:4B:AC:1E:02:03","dst":"172.30.2.3","flags":["self"],"state":"permanent"},` +
		`{"mac":"00:00:00:00:00:00","dst":"172.30.2.9","flags":["self"],"state":""},` +
		`{"mac":"33:33:00:00:00:01","flags":["self"],"state":"permanent"}]`
	gotF, err := parseFDB([]byte(fdb))
	if err != nil {
		t.Fatal(err)
	}
	wantF := []fdbEntry{
		{MAC: "0e:4b:ac:1e:02:03", Dst: addr("172.30.2.3"), Permanent: true},
		{MAC: "00:00:00:00:00:00", Dst: addr("172.30.2.9")},
	}
	if !reflect.DeepEqual(gotF, wantF) {
		t.Errorf("fdb: got %v\nwant %v", gotF, wantF)
	}

	neigh := `[{"dst":"10.77.3.0","lladdr":"0e:4b:ac:1e:02:03","state":["PERMANENT"]},` +
		`{"dst":"10.77.5.5","state":["FAILED"]},{"dst":"fe80::1","lladdr":"02:00:00:00:00:01","state":["STALE"]}]`
	gotN, err := parseNeigh([]byte(neigh))
	if err != nil {
		t.Fatal(err)
	}
	wantN := []neighEntry{
		{Dst: addr("10.77.3.0"), MAC: "0e:4b:ac:1e:02:03", Permanent: true},
		{Dst: addr("10.77.5.5")},
	}
	if !reflect.DeepEqual(gotN, wantN) {
		t.Errorf("neigh: got %v\nwant %v", gotN, wantN)
	}
}

func TestRouteArgs(t *testing.T) {
	r := route{Dst: pfx("10.42.3.0/24"), Gateway: addr("10.42.3.0"), Dev: "vx", OnLink: true}
	got := routeArgs("replace", r)
	want := []string{"route", "replace", "10.42.3.0/24", "via", "10.42.3.0", "dev", "vx", "onlink",
		"proto", "221", "metric", "0", "table", "main"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}

func TestCommandErrors(t *testing.T) {
	_, err := execRun(context.Background(), "sh", "-c", "echo 'Device \"vx\" does not exist.' >&2; exit 1")
	if err == nil || !isNoDevice(err) || !isGone(err) {
		t.Fatalf("missing device not recognised: %v", err)
	}
	_, err = execRun(context.Background(), "sh", "-c", "echo 'RTNETLINK answers: Operation not permitted' >&2; exit 2")
	if err == nil || isNoDevice(err) || isGone(err) {
		t.Fatalf("permission error taken for a missing object: %v", err)
	}
	if isGone(errors.New("No such process")) {
		t.Error("an error that is not a command's was taken for a missing object")
	}
}
