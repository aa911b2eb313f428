package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/internal/flock"
	"github.com/pursuance/pursuance/relay"
)

// relayDBName is the SQLite relay store's file in the data directory, and
// relayLockName the file a relay holds locked while it runs on it.
const (
	relayDBName   = "relay.db"
	relayLockName = "relay.lock"
)

// lockRelayData takes the data directory's lock: one relay at a time
// serves a store (its live subscribers are fed by its own commits), and a
// restore runs only while none does. The lock lasts until the returned
// file is closed, or the process ends. On a platform without file locks,
// nothing is locked.
func lockRelayData(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, relayLockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	ok, err := flock.TryLock(f)
	switch {
	case errors.Is(err, flock.ErrUnsupported):
		return f, nil
	case err != nil:
		f.Close()
		return nil, err
	case !ok:
		f.Close()
		return nil, fmt.Errorf("a relay is running on %s (it holds %s): stop it first, or give another --data", dir, relayLockName)
	}
	return f, nil
}

func newRelayBackupCmd(e *Env) *cobra.Command {
	var data, out string
	cmd := &cobra.Command{
		Use:   "backup --data DIR --out FILE",
		Short: "Copy a relay's store consistently, while it runs",
		Long: `Write a consistent copy of the relay's SQLite store in DIR to FILE, while the
relay keeps serving (one snapshot of the store, compacted; the relay's
commits go on meanwhile). FILE must not exist; it is written beside, checked,
synced and renamed, so it is either whole or absent. Back up DIR/onion.key
and DIR/acme with it, if the relay has them (docs/operating.md, "Backups").`,
		Example: `  pursuance relay backup --data /var/lib/pursuance-relay --out /backup/relay-$(date +%F).db`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" || out == "" {
				return usageErrorf("relay backup needs --data DIR (the relay's) and --out FILE (a new file)")
			}
			info, err := relay.BackupSQLite(cmd.Context(), filepath.Join(data, relayDBName), out)
			if err != nil {
				return err
			}
			return e.backupReport("Backed up", info)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the relay's data `DIR`")
	cmd.Flags().StringVar(&out, "out", "", "the backup `FILE` to write (must not exist)")
	return cmd
}

func newRelayRestoreCmd(e *Env) *cobra.Command {
	var data, in string
	cmd := &cobra.Command{
		Use:   "restore --data DIR --in FILE",
		Short: "Put a backup in the place of a stopped relay's store",
		Long: `Replace the relay's store in DIR with the backup FILE (made by relay backup).
The relay must be stopped. The backup is checked before anything changes;
the store it replaces is kept as DIR/relay.db.replaced until the next
restore. Members notice at their next sync that the relay went back in
time and send it what it lacks (docs/sync.md, "Checking relays").`,
		Example: `  pursuance relay restore --data /var/lib/pursuance-relay --in /backup/relay-2026-12-01.db`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if data == "" || in == "" {
				return usageErrorf("relay restore needs --data DIR (the relay's) and --in FILE (a backup)")
			}
			lock, err := lockRelayData(data)
			if err != nil {
				return err
			}
			defer lock.Close()
			info, err := relay.RestoreSQLite(cmd.Context(), filepath.Join(data, relayDBName), in)
			if err != nil {
				return err
			}
			return e.backupReport("Restored", info)
		},
	}
	cmd.Flags().StringVar(&data, "data", "", "the relay's data `DIR`")
	cmd.Flags().StringVar(&in, "in", "", "the backup `FILE` to restore")
	return cmd
}

func (e *Env) backupReport(verb string, info relay.BackupInfo) error {
	if e.json {
		return e.printJSON(info)
	}
	fmt.Fprintf(e.Stdout, "%s %s: %d topics, %d envelopes (%d bytes), instance %s.\n", verb, info.File, info.Topics, info.Envelopes, info.Bytes, info.Instance)
	return nil
}
