//go:build !unix

package sqlitefile

// syncDir does nothing where a directory cannot be synced (Windows, whose
// NTFS journals its directory entries).
func syncDir(string) error { return nil }
