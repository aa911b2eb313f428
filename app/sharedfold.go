package app

// FoldCache keeps the states folded by the Nodes opened with it
// (Options.Folds), so that one process opening its home again and again
// (the node running commands for the CLI, docs/node-socket.md) folds each
// log once, not once per Node. A state is kept with what it was folded
// from (foldKey: the store's log, the member's secrets and KEM keys), so
// a Node is handed one only while its home holds exactly that; the Nodes
// sharing a FoldCache must be of one home and identity, and used one at a
// time (a Node's rule).
type FoldCache struct{ c foldCache }

// NewFoldCache returns an empty FoldCache.
func NewFoldCache() *FoldCache { return new(FoldCache) }

// cache is the foldCache of a Node of home opened with f: f's own, or
// (f nil) the one this process keeps for home, which every Node of the
// home opened without a FoldCache shares (keptFor, docs/fold.md).
func (f *FoldCache) cache(home string) *foldCache {
	if f == nil {
		return keptFor(home)
	}
	return &f.c
}
