package store

// SetMergeThreshold lowers the size at which s moves IDs from ids_recent to
// ids, so that tests exercise both tiers of the ID index.
func SetMergeThreshold(s *SQLite, n int) { s.mergeAt = n }
