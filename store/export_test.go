package store

// SetMergeThreshold lowers the size at which s moves ID prefixes from
// prefixes_recent to prefixes, so that tests exercise both tiers of the ID
// index.
func SetMergeThreshold(s *SQLite, n int) { s.mergeAt = n }

// SetCheckpointing lowers how many frames s writes to the WAL between two
// background checkpoints, and the WAL length (in frames) past which Put
// finishes a checkpoint itself, so that tests exercise both often.
func SetCheckpointing(s *SQLite, every int, capFrames int64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.ck.every, s.ck.capFrames = every, capFrames
}
