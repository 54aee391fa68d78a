package proxy

import (
	"maps"
	"slices"
	"sort"

	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/nftables"
)

// syncMode says how much of the table a sync rewrites.
type syncMode int

const (
	// syncIncremental touches only what differs from the last programmed
	// ruleset.
	syncIncremental syncMode = iota
	// syncFull rewrites every chain, map and static set, and removes any
	// object it does not want (listed in existing).
	syncFull
	// syncRecreate deletes the table first: the recovery when a full sync
	// failed (for instance because an object of the same name exists with
	// another definition). Session-affinity state is lost.
	syncRecreate
)

func (m syncMode) String() string {
	switch m {
	case syncFull:
		return "full"
	case syncRecreate:
		return "recreate"
	}
	return "incremental"
}

// plan adds to tx the operations that take the table to want. For
// syncIncremental, prev is what the last successful transaction programmed;
// otherwise existing holds the names of the objects now in the table
// (knftables ListAll: "chain", "set", "map").
//
// Ordering inside the one atomic transaction: definitions first (so rules
// and elements can refer to them), then element removals and chain flushes
// (dropping references to what goes away), then new content, then deletion
// of objects nothing refers to anymore.
func plan(tx *knftables.Transaction, mode syncMode, prev, want *ruleset, existing map[string][]string) {
	if mode == syncIncremental && prev == nil {
		mode = syncFull
	}
	if mode != syncIncremental {
		prev = nil
	}
	if mode == syncRecreate {
		nftables.DestroyTable(tx)
		existing = nil
	}
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("skiff service proxy")})

	// 1. Definitions of objects not known to exist ("add" is idempotent, so
	// a full sync simply adds everything).
	for _, name := range keysWhere(want.sets, func(n string, _ *setSpec) bool { return prev == nil || prev.sets[n] == nil }) {
		tx.Add(setObject(want.sets[name]))
	}
	for _, name := range keysWhere(want.maps, func(n string, _ *mapSpec) bool { return prev == nil || prev.maps[n] == nil }) {
		tx.Add(&knftables.Map{Name: name, Type: want.maps[name].typ})
	}
	for _, name := range keysWhere(want.chains, func(n string, _ *chainSpec) bool { return prev == nil || prev.chains[n] == nil }) {
		tx.Add(chainObject(want.chains[name]))
	}

	// 2. Removal of stale elements, and flushes.
	var rewrite []string // chains whose rules are (re)written
	if prev == nil {
		for _, name := range sortedKeys(want.maps) {
			tx.Flush(&knftables.Map{Name: name})
		}
		for _, name := range sortedKeys(want.sets) {
			if !want.sets[name].dynamic {
				tx.Flush(&knftables.Set{Name: name})
			}
		}
		rewrite = sortedKeys(want.chains)
		for _, name := range rewrite {
			tx.Flush(&knftables.Chain{Name: name})
		}
	} else {
		for _, name := range sortedKeys(want.maps) {
			if old := prev.maps[name]; old != nil {
				cur := want.maps[name].elems
				for _, k := range keysWhere(old.elems, func(k string, oe element) bool {
					e, ok := cur[k]
					return !ok || !slices.Equal(e.value, oe.value)
				}) {
					tx.Delete(&knftables.Element{Map: name, Key: old.elems[k].key})
				}
			}
		}
		for _, name := range sortedKeys(want.sets) {
			if old := prev.sets[name]; old != nil && !old.dynamic {
				cur := want.sets[name].elems
				for _, k := range keysWhere(old.elems, func(k string, _ element) bool { _, ok := cur[k]; return !ok }) {
					tx.Delete(&knftables.Element{Set: name, Key: old.elems[k].key})
				}
			}
		}
		rewrite = keysWhere(want.chains, func(n string, c *chainSpec) bool {
			old := prev.chains[n]
			return old == nil || !slices.Equal(old.rules, c.rules)
		})
		for _, name := range rewrite {
			if prev.chains[name] != nil {
				tx.Flush(&knftables.Chain{Name: name})
			}
		}
	}
	staleChains, staleSets, staleMaps := stale(mode, prev, want, existing)
	for _, name := range staleChains {
		tx.Flush(&knftables.Chain{Name: name})
	}

	// 3. New content.
	for _, name := range sortedKeys(want.maps) {
		m := want.maps[name]
		var old *mapSpec
		if prev != nil {
			old = prev.maps[name]
		}
		for _, k := range keysWhere(m.elems, func(k string, e element) bool {
			oe, ok := element{}, false
			if old != nil {
				oe, ok = old.elems[k]
			}
			return !ok || !slices.Equal(oe.value, e.value)
		}) {
			e := m.elems[k]
			tx.Add(&knftables.Element{Map: name, Key: e.key, Value: e.value})
		}
	}
	for _, name := range sortedKeys(want.sets) {
		s := want.sets[name]
		if s.dynamic {
			continue
		}
		var old *setSpec
		if prev != nil {
			old = prev.sets[name]
		}
		for _, k := range keysWhere(s.elems, func(k string, _ element) bool {
			if old == nil {
				return true
			}
			_, ok := old.elems[k]
			return !ok
		}) {
			tx.Add(&knftables.Element{Set: name, Key: s.elems[k].key})
		}
	}
	for _, name := range rewrite {
		for _, rule := range want.chains[name].rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: rule})
		}
	}

	// 4. Objects nothing refers to anymore.
	for _, name := range staleChains {
		tx.Delete(&knftables.Chain{Name: name})
	}
	for _, name := range staleSets {
		tx.Delete(&knftables.Set{Name: name})
	}
	for _, name := range staleMaps {
		tx.Delete(&knftables.Map{Name: name})
	}
}

// stale lists the objects to delete: those in prev (incremental) or in the
// table (full) that want does not have.
func stale(mode syncMode, prev, want *ruleset, existing map[string][]string) (chains, sets, maps []string) {
	if mode == syncIncremental {
		chains = keysWhere(prev.chains, func(n string, _ *chainSpec) bool { return want.chains[n] == nil })
		sets = keysWhere(prev.sets, func(n string, _ *setSpec) bool { return want.sets[n] == nil })
		maps = keysWhere(prev.maps, func(n string, _ *mapSpec) bool { return want.maps[n] == nil })
		return chains, sets, maps
	}
	pick := func(kind string, has func(string) bool) []string {
		var out []string
		for _, n := range existing[kind] {
			if !has(n) {
				out = append(out, n)
			}
		}
		sort.Strings(out)
		return out
	}
	chains = pick("chain", func(n string) bool { return want.chains[n] != nil })
	sets = pick("set", func(n string) bool { return want.sets[n] != nil })
	maps = pick("map", func(n string) bool { return want.maps[n] != nil })
	return chains, sets, maps
}

func chainObject(c *chainSpec) *knftables.Chain {
	ch := &knftables.Chain{Name: c.name}
	if c.base != nil {
		ch.Type = knftables.PtrTo(c.base.typ)
		ch.Hook = knftables.PtrTo(c.base.hook)
		ch.Priority = knftables.PtrTo(c.base.priority)
	}
	return ch
}

func setObject(s *setSpec) *knftables.Set {
	set := &knftables.Set{Name: s.name, Type: s.typ, Flags: s.flags}
	if s.timeout > 0 {
		set.Timeout = knftables.PtrTo(s.timeout)
	}
	return set
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// keysWhere returns the sorted keys of m whose entries keep accepts: an
// incremental sync sorts only what changed, not the whole table's names.
func keysWhere[V any](m map[string]V, keep func(string, V) bool) []string {
	var out []string
	for k, v := range m {
		if keep(k, v) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
