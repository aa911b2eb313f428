package relay

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/pursuance/pursuance/internal/sqlitefile"
)

// BackupInfo says what a backup or a restored store holds.
type BackupInfo struct {
	File      string `json:"file"`
	Instance  string `json:"instance"`
	Topics    int64  `json:"topics"`
	Envelopes int64  `json:"envelopes"`
	Bytes     int64  `json:"bytes"` // envelope bytes
	Size      int64  `json:"size"`  // the file's
}

// backupBusy is how long a backup or a restore waits for the store's
// locks (a relay's commit holds the writer's for milliseconds).
const backupBusy = 30 * time.Second

// partialSuffix names a backup being written, beside its destination.
const partialSuffix = ".partial"

// BackupSQLite writes a consistent copy of the SQLite relay store at
// dbPath to out, while a relay may be serving from it: VACUUM INTO reads
// one snapshot of the store (WAL mode lets the relay commit meanwhile)
// and writes it compacted. The copy is written to out.partial, checked,
// synced, then renamed to out: out is either absent or a whole backup.
// out must not exist.
func BackupSQLite(ctx context.Context, dbPath, out string) (BackupInfo, error) {
	if _, err := os.Stat(dbPath); err != nil {
		return BackupInfo{}, fmt.Errorf("no relay store at %s: %w", dbPath, err)
	}
	if _, err := os.Stat(out); err == nil {
		return BackupInfo{}, fmt.Errorf("%s exists: give a new file to back up to (a backup never overwrites one)", out)
	}
	partial := out + partialSuffix
	os.Remove(partial) // left by a backup that died
	db, err := sqlitefile.Open(dbPath, backupBusy)
	if err != nil {
		return BackupInfo{}, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", partial); err != nil {
		os.Remove(partial)
		return BackupInfo{}, fmt.Errorf("backing up %s: %w", dbPath, err)
	}
	info, err := checkStoreFile(ctx, partial)
	if err == nil {
		err = syncPath(partial)
	}
	if err == nil {
		err = os.Chmod(partial, 0o600) // SQLite made it with the umask's mode
	}
	if err == nil {
		err = os.Rename(partial, out)
	}
	if err != nil {
		os.Remove(partial)
		return BackupInfo{}, err
	}
	syncPath(filepath.Dir(out))
	info.File = out
	return info, nil
}

// checkStoreFile checks that path is a whole relay store (SQLite's
// integrity check, the relay's tables and instance ID) and says what it
// holds. It changes nothing in it.
func checkStoreFile(ctx context.Context, path string) (BackupInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return BackupInfo{}, err
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs, RawQuery: "mode=ro&_pragma=busy_timeout(30000)"}).String())
	if err != nil {
		return BackupInfo{}, err
	}
	defer db.Close()
	var ok string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check(1)").Scan(&ok); err != nil || ok != "ok" {
		if err == nil {
			err = errors.New(ok)
		}
		return BackupInfo{}, fmt.Errorf("%s is not a whole relay store (SQLite's integrity check: %v)", path, err)
	}
	info := BackupInfo{File: path, Size: fi.Size()}
	err = db.QueryRowContext(ctx, "SELECT value FROM meta WHERE name = 'instance'").Scan(&info.Instance)
	if err == nil {
		err = db.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM topics").Scan(&info.Topics, &info.Bytes)
	}
	if err == nil {
		err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM envelopes").Scan(&info.Envelopes)
	}
	if err != nil {
		return BackupInfo{}, fmt.Errorf("%s is not a relay store (no relay tables or instance ID in it)", path)
	}
	return info, nil
}

// restoreSuffix names the backup being put in place, and replacedSuffix
// the store a restore replaced (kept until the next restore: an operator
// who restored the wrong file can go back).
const (
	restoreSuffix  = ".restoring"
	replacedSuffix = ".replaced"
)

// RestoreSQLite puts the backup in the place of the SQLite relay store at
// dbPath. No relay may be running on it (the caller holds its lock). The
// backup is copied beside the store and checked first; the store it
// replaces is kept as dbPath.replaced. The restored store keeps the
// backup's instance ID: members notice that its history went back (their
// cursors and anchors, docs/sync.md) and send it what it lacks.
func RestoreSQLite(ctx context.Context, dbPath, backup string) (BackupInfo, error) {
	if _, err := checkStoreFile(ctx, backup); err != nil {
		return BackupInfo{}, err
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return BackupInfo{}, err
	}
	next := dbPath + restoreSuffix
	if err := copyFile(backup, next); err != nil {
		os.Remove(next)
		return BackupInfo{}, fmt.Errorf("copying %s: %w", backup, err)
	}
	info, err := checkStoreFile(ctx, next)
	if err != nil {
		os.Remove(next)
		return BackupInfo{}, err
	}
	if _, err := os.Stat(dbPath); err == nil {
		// Fold the store's WAL into it, so that the file moved aside is
		// whole by itself, and no stray WAL meets the restored file.
		db, err := sqlitefile.Open(dbPath, backupBusy)
		if err != nil {
			return BackupInfo{}, err
		}
		_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
		db.Close()
		if err != nil {
			os.Remove(next)
			return BackupInfo{}, fmt.Errorf("folding %s's log before replacing it: %w", dbPath, err)
		}
		for _, s := range []string{"-wal", "-shm"} {
			if err := os.Remove(dbPath + s); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return BackupInfo{}, err
			}
		}
		if err := os.Rename(dbPath, dbPath+replacedSuffix); err != nil {
			return BackupInfo{}, err
		}
	}
	if err := os.Rename(next, dbPath); err != nil {
		return BackupInfo{}, err
	}
	if err := syncPath(filepath.Dir(dbPath)); err != nil {
		return BackupInfo{}, err
	}
	info.File = dbPath
	return info, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncPath fsyncs a file or directory (a directory: where the platform
// allows it).
func syncPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		if fi, serr := f.Stat(); serr == nil && fi.IsDir() {
			return nil // Windows cannot sync a directory
		}
		return err
	}
	return nil
}
