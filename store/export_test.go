package store

import "time"

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

// SetRunsPerLevel lowers the number of runs at which the ID index's main
// tier merges a level, so that tests exercise merges of runs.
func SetRunsPerLevel(s *SQLite, n int) { s.fanout = n }

// MoveTime is the time s has spent moving IDs from the recent tier of the
// ID index to the main one, merges of runs included.
func MoveTime(s *SQLite) time.Duration {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.moveTime
}
