package netpol

import (
	"slices"

	"sigs.k8s.io/knftables"

	"github.com/skiff-sh/skiff/internal/nftables"
)

// plan adds to tx the operations that take the table to want, all in the
// one atomic transaction. With prev nil (first sync, periodic resync, after
// a failure) the table is deleted and written anew, which also removes
// anything stale; otherwise only what differs from prev is touched.
//
// Incremental order: definitions of new objects (so rules and elements can
// refer to them), element removals and chain flushes (dropping references
// to what goes away), new elements and rules, then deletion of objects
// nothing refers to anymore.
func plan(tx *knftables.Transaction, prev, want *ruleset) {
	if prev == nil {
		nftables.DestroyTable(tx)
	}
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("skiff network policies")})
	if prev == nil {
		prev = newRuleset()
	}

	for _, name := range sortedKeys(want.sets) {
		if old := prev.sets[name]; old == nil {
			tx.Add(setObject(want.sets[name]))
		}
	}
	for _, name := range sortedKeys(want.chains) {
		if prev.chains[name] == nil {
			tx.Add(chainObject(want.chains[name]))
		}
	}

	for _, name := range sortedKeys(want.sets) {
		if old := prev.sets[name]; old != nil {
			for _, k := range sortedKeys(old.elems) {
				if _, keep := want.sets[name].elems[k]; !keep {
					tx.Delete(&knftables.Element{Set: name, Key: old.elems[k]})
				}
			}
		}
	}
	var rewrite []string
	for _, name := range sortedKeys(want.chains) {
		old := prev.chains[name]
		switch {
		case old == nil:
			rewrite = append(rewrite, name)
		case !slices.Equal(old.rules, want.chains[name].rules):
			tx.Flush(&knftables.Chain{Name: name})
			rewrite = append(rewrite, name)
		}
	}
	var staleChains, staleSets []string
	for _, name := range sortedKeys(prev.chains) {
		if want.chains[name] == nil {
			staleChains = append(staleChains, name)
			tx.Flush(&knftables.Chain{Name: name})
		}
	}
	for _, name := range sortedKeys(prev.sets) {
		if want.sets[name] == nil {
			staleSets = append(staleSets, name)
		}
	}

	for _, name := range sortedKeys(want.sets) {
		s, old := want.sets[name], prev.sets[name]
		for _, k := range sortedKeys(s.elems) {
			if old != nil {
				if _, had := old.elems[k]; had {
					continue
				}
			}
			tx.Add(&knftables.Element{Set: name, Key: s.elems[k]})
		}
	}
	for _, name := range rewrite {
		for _, rule := range want.chains[name].rules {
			tx.Add(&knftables.Rule{Chain: name, Rule: rule})
		}
	}

	for _, name := range staleChains {
		tx.Delete(&knftables.Chain{Name: name})
	}
	for _, name := range staleSets {
		tx.Delete(&knftables.Set{Name: name})
	}
}

func chainObject(c *chainSpec) *knftables.Chain {
	ch := &knftables.Chain{Name: c.name}
	if c.base {
		ch.Type = knftables.PtrTo(knftables.FilterType)
		ch.Hook = knftables.PtrTo(knftables.ForwardHook)
		ch.Priority = knftables.PtrTo(c.prio)
	}
	return ch
}

func setObject(s *setSpec) *knftables.Set {
	set := &knftables.Set{Name: s.name, Type: s.typ}
	if s.interval {
		set.Flags = []knftables.SetFlag{knftables.IntervalFlag}
	}
	return set
}
