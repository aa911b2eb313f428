package ingest

// SetRefCacheSize makes in's cache of refs hold size to 2×size entries, so
// that tests can make it forget what it holds in production.
func SetRefCacheSize(in *Ingester, size int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.refs = newRefCache(size)
}
