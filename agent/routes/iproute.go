package routes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// This file reads and writes kernel state through the iproute2 "ip" and
// "bridge" commands.

// runner runs a command and returns its standard output. Tests swap it for
// one that runs the command inside another network namespace.
type runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// cmdError is a failed command with its standard error.
type cmdError struct {
	cmd    string
	stderr string
	err    error
}

func (e *cmdError) Error() string {
	if e.stderr == "" {
		return fmt.Sprintf("%s: %v", e.cmd, e.err)
	}
	return fmt.Sprintf("%s: %v: %s", e.cmd, e.err, e.stderr)
}

func (e *cmdError) Unwrap() error { return e.err }

// execRun runs the command in the process's own network namespace.
func execRun(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &cmdError{cmd: name + " " + strings.Join(args, " "), stderr: strings.TrimSpace(stderr.String()), err: err}
	}
	return out, nil
}

// stderrHas reports whether err is a failed command whose standard error
// contains one of the strings.
func stderrHas(err error, subs ...string) bool {
	var ce *cmdError
	if !errors.As(err, &ce) {
		return false
	}
	for _, s := range subs {
		if strings.Contains(ce.stderr, s) {
			return true
		}
	}
	return false
}

// isNoDevice reports whether err says a device does not exist.
func isNoDevice(err error) bool {
	return stderrHas(err, "does not exist", "Cannot find device")
}

// isGone reports whether a delete failed because the object was not there.
func isGone(err error) bool {
	return stderrHas(err, "No such process", "No such file or directory", "does not exist", "Cannot find device",
		"Cannot assign requested address")
}

// iproute issues the commands.
type iproute struct{ run runner }

func (ip iproute) do(ctx context.Context, name string, args ...string) error {
	_, err := ip.run(ctx, name, args...)
	return err
}

// --- addresses

type jsonLink struct {
	Name     string   `json:"ifname"`
	Flags    []string `json:"flags"`
	MTU      int      `json:"mtu"`
	Address  string   `json:"address"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
	LinkInfo *struct {
		Kind string `json:"info_kind"`
		Data struct {
			ID       int    `json:"id"`
			Local    string `json:"local"`
			Port     int    `json:"port"`
			Learning *bool  `json:"learning"`
		} `json:"info_data"`
	} `json:"linkinfo"`
}

// parseAddrs reads "ip -j addr show" output, keeping IPv4 addresses.
func parseAddrs(out []byte) ([]hostAddr, error) {
	var links []jsonLink
	if err := unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("parsing ip addr output: %w", err)
	}
	var addrs []hostAddr
	for _, l := range links {
		up := slices.Contains(l.Flags, "UP")
		for _, a := range l.AddrInfo {
			if a.Family != "inet" {
				continue
			}
			ip, err := netip.ParseAddr(a.Local)
			if err != nil || !ip.Is4() || a.PrefixLen < 0 || a.PrefixLen > 32 {
				continue
			}
			addrs = append(addrs, hostAddr{Dev: l.Name, Prefix: netip.PrefixFrom(ip, a.PrefixLen), Scope: a.Scope, Up: up, MTU: l.MTU})
		}
	}
	return addrs, nil
}

func (ip iproute) addrs(ctx context.Context) ([]hostAddr, error) {
	out, err := ip.run(ctx, "ip", "-j", "-4", "addr", "show")
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	return parseAddrs(out)
}

func (ip iproute) addAddr(ctx context.Context, dev string, p netip.Prefix) error {
	if err := ip.do(ctx, "ip", "addr", "replace", p.String(), "dev", dev); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", p, dev, err)
	}
	return nil
}

func (ip iproute) delAddr(ctx context.Context, dev string, p netip.Prefix) error {
	if err := ip.do(ctx, "ip", "addr", "del", p.String(), "dev", dev); err != nil && !isGone(err) {
		return fmt.Errorf("removing address %s from %s: %w", p, dev, err)
	}
	return nil
}

// --- routes

type jsonRoute struct {
	Dst     string   `json:"dst"`
	Gateway string   `json:"gateway"`
	Dev     string   `json:"dev"`
	Metric  int      `json:"metric"`
	Flags   []string `json:"flags"`
}

// parseRoutes reads "ip -j route show" output. A host route's destination
// is printed without a length; "default" and anything unparsable is
// skipped, and a route without a single gateway (multipath) keeps an
// invalid Gateway.
func parseRoutes(out []byte) ([]route, error) {
	var jr []jsonRoute
	if err := unmarshal(out, &jr); err != nil {
		return nil, fmt.Errorf("parsing ip route output: %w", err)
	}
	var rs []route
	for _, j := range jr {
		dst, err := parseDst(j.Dst)
		if err != nil {
			continue
		}
		r := route{Dst: dst, Dev: j.Dev, Metric: j.Metric, OnLink: slices.Contains(j.Flags, "onlink")}
		if gw, err := netip.ParseAddr(j.Gateway); err == nil {
			r.Gateway = gw
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func parseDst(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	return netip.ParsePrefix(s)
}

var protoArg = strconv.Itoa(RouteProtocol)

// ourRoutes lists the main table's IPv4 routes with our protocol.
func (ip iproute) ourRoutes(ctx context.Context) ([]route, error) {
	out, err := ip.run(ctx, "ip", "-j", "-4", "route", "show", "table", "main", "proto", protoArg)
	if err != nil {
		return nil, fmt.Errorf("listing routes: %w", err)
	}
	return parseRoutes(out)
}

func routeArgs(verb string, r route) []string {
	args := []string{"route", verb, r.Dst.String(), "via", r.Gateway.String(), "dev", r.Dev}
	if r.OnLink {
		args = append(args, "onlink")
	}
	return append(args, "proto", protoArg, "metric", strconv.Itoa(r.Metric), "table", "main")
}

func (ip iproute) replaceRoute(ctx context.Context, r route) error {
	if err := ip.do(ctx, "ip", routeArgs("replace", r)...); err != nil {
		return fmt.Errorf("route %s: %w", r, err)
	}
	return nil
}

// delRoute deletes a route of ours: the protocol in the request makes the
// kernel match only a route carrying it.
func (ip iproute) delRoute(ctx context.Context, r route) error {
	err := ip.do(ctx, "ip", "route", "del", r.Dst.String(), "proto", protoArg, "metric", strconv.Itoa(r.Metric), "table", "main")
	if err != nil && !isGone(err) {
		return fmt.Errorf("deleting route %s: %w", r, err)
	}
	return nil
}

// --- links

// link returns the state of the named device, or nil when there is none.
func (ip iproute) link(ctx context.Context, name string) (*linkState, error) {
	out, err := ip.run(ctx, "ip", "-j", "-d", "link", "show", "dev", name)
	if isNoDevice(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inspecting device %s: %w", name, err)
	}
	return parseLink(out)
}

// parseLink reads "ip -j -d link show dev X" output.
func parseLink(out []byte) (*linkState, error) {
	var links []jsonLink
	if err := unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("parsing ip link output: %w", err)
	}
	if len(links) != 1 {
		return nil, fmt.Errorf("ip link show listed %d devices, want 1", len(links))
	}
	l := links[0]
	st := &linkState{MAC: l.Address, Up: slices.Contains(l.Flags, "UP")}
	if li := l.LinkInfo; li != nil {
		st.Kind = li.Kind
		st.VNI = li.Data.ID
		st.Port = li.Data.Port
		st.Learning = li.Data.Learning == nil || *li.Data.Learning
		if a, err := netip.ParseAddr(li.Data.Local); err == nil {
			st.Local = a
		}
	}
	return st, nil
}

func (ip iproute) addVXLAN(ctx context.Context, cfg Config, mac string, mtu int) error {
	args := []string{"link", "add", cfg.VXLAN.Name}
	if mtu > 0 {
		args = append(args, "mtu", strconv.Itoa(mtu))
	}
	args = append(args, "address", mac, "type", "vxlan",
		"id", strconv.Itoa(cfg.VXLAN.VNI), "local", cfg.NodeIP.String(),
		"dstport", strconv.Itoa(cfg.VXLAN.Port), "nolearning")
	if err := ip.do(ctx, "ip", args...); err != nil {
		return fmt.Errorf("creating vxlan device: %w", err)
	}
	return nil
}

func (ip iproute) setLink(ctx context.Context, name string, args ...string) error {
	if err := ip.do(ctx, "ip", append([]string{"link", "set", "dev", name}, args...)...); err != nil {
		return fmt.Errorf("setting %s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func (ip iproute) delLink(ctx context.Context, name string) error {
	if err := ip.do(ctx, "ip", "link", "del", "dev", name); err != nil && !isGone(err) {
		return fmt.Errorf("deleting device %s: %w", name, err)
	}
	return nil
}

// --- forwarding and neighbour entries

type jsonFDB struct {
	MAC   string   `json:"mac"`
	Dst   string   `json:"dst"`
	State string   `json:"state"`
	Flags []string `json:"flags"`
}

// parseFDB reads "bridge -j fdb show dev X" output, keeping the entries
// with a tunnel destination.
func parseFDB(out []byte) ([]fdbEntry, error) {
	var jf []jsonFDB
	if err := unmarshal(out, &jf); err != nil {
		return nil, fmt.Errorf("parsing bridge fdb output: %w", err)
	}
	var es []fdbEntry
	for _, j := range jf {
		dst, err := netip.ParseAddr(j.Dst)
		if err != nil {
			continue
		}
		es = append(es, fdbEntry{MAC: strings.ToLower(j.MAC), Dst: dst, Permanent: j.State == "permanent"})
	}
	return es, nil
}

func (ip iproute) fdb(ctx context.Context, dev string) ([]fdbEntry, error) {
	out, err := ip.run(ctx, "bridge", "-j", "fdb", "show", "dev", dev)
	if err != nil {
		return nil, fmt.Errorf("listing forwarding entries of %s: %w", dev, err)
	}
	return parseFDB(out)
}

func (ip iproute) replaceFDB(ctx context.Context, dev string, e fdbEntry) error {
	if err := ip.do(ctx, "bridge", "fdb", "replace", e.MAC, "dev", dev, "dst", e.Dst.String(), "self", "permanent"); err != nil {
		return fmt.Errorf("forwarding entry %s to %s: %w", e.MAC, e.Dst, err)
	}
	return nil
}

func (ip iproute) delFDB(ctx context.Context, dev string, e fdbEntry) error {
	err := ip.do(ctx, "bridge", "fdb", "del", e.MAC, "dev", dev, "dst", e.Dst.String(), "self")
	if err != nil && !isGone(err) {
		return fmt.Errorf("deleting forwarding entry %s to %s: %w", e.MAC, e.Dst, err)
	}
	return nil
}

type jsonNeigh struct {
	Dst    string   `json:"dst"`
	LLAddr string   `json:"lladdr"`
	State  []string `json:"state"`
}

// parseNeigh reads "ip -j -4 neigh show dev X" output.
func parseNeigh(out []byte) ([]neighEntry, error) {
	var jn []jsonNeigh
	if err := unmarshal(out, &jn); err != nil {
		return nil, fmt.Errorf("parsing ip neigh output: %w", err)
	}
	var es []neighEntry
	for _, j := range jn {
		dst, err := netip.ParseAddr(j.Dst)
		if err != nil || !dst.Is4() {
			continue
		}
		es = append(es, neighEntry{Dst: dst, MAC: strings.ToLower(j.LLAddr), Permanent: slices.Contains(j.State, "PERMANENT")})
	}
	return es, nil
}

func (ip iproute) neigh(ctx context.Context, dev string) ([]neighEntry, error) {
	out, err := ip.run(ctx, "ip", "-j", "-4", "neigh", "show", "dev", dev)
	if err != nil {
		return nil, fmt.Errorf("listing neighbours of %s: %w", dev, err)
	}
	return parseNeigh(out)
}

func (ip iproute) replaceNeigh(ctx context.Context, dev string, e neighEntry) error {
	if err := ip.do(ctx, "ip", "neigh", "replace", e.Dst.String(), "lladdr", e.MAC, "dev", dev, "nud", "permanent"); err != nil {
		return fmt.Errorf("neighbour %s at %s: %w", e.Dst, e.MAC, err)
	}
	return nil
}

func (ip iproute) delNeigh(ctx context.Context, dev string, e neighEntry) error {
	if err := ip.do(ctx, "ip", "neigh", "del", e.Dst.String(), "dev", dev); err != nil && !isGone(err) {
		return fmt.Errorf("deleting neighbour %s: %w", e.Dst, err)
	}
	return nil
}

// unmarshal decodes JSON output; empty output (some commands print nothing
// when there is nothing to list) is an empty list.
func unmarshal(out []byte, v any) error {
	if len(bytes.TrimSpace(out)) == 0 {
		return nil
	}
	return json.Unmarshal(out, v)
}
