package relay

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A backup taken while appends are committed is one consistent snapshot:
// every topic's entries run from 1 to its last cursor with none missing,
// and the instance ID is the store's. Restored in the place of a store,
// it is what a relay then serves, and the store replaced is kept aside.
func TestBackupWhileAppendingAndRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.db")
	st, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	const topics = 4
	var stop atomic.Bool
	var wg sync.WaitGroup
	var appended atomic.Int64
	for i := range topics {
		topic, _ := testTopic(t, byte(i+1))
		wg.Go(func() {
			for n := uint64(0); !stop.Load(); n++ {
				a, b := make([]byte, 512), make([]byte, 512)
				binary.BigEndian.PutUint64(a, 2*n)
				binary.BigEndian.PutUint64(b, 2*n+1)
				res, err := st.Append(ctx, topic, [][]byte{a, b})
				if err != nil || res.Stored != 2 {
					t.Errorf("append: %+v %v", res, err)
					return
				}
				appended.Add(2)
			}
		})
	}
	waitAppended := func(n int64) {
		for appended.Load() < n && !t.Failed() {
			time.Sleep(time.Millisecond)
		}
	}
	waitAppended(200)
	out := filepath.Join(dir, "backup.db")
	info, err := BackupSQLite(ctx, path, out)
	if err != nil {
		t.Fatal(err)
	}
	waitAppended(appended.Load() + 200) // appends go on after the snapshot
	stop.Store(true)
	wg.Wait()
	if info.Instance != st.Instance() || info.Envelopes == 0 || info.Topics != topics {
		t.Fatalf("backup: %+v (store instance %s)", info, st.Instance())
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	if _, err := os.Stat(out + partialSuffix); !os.IsNotExist(err) {
		t.Fatalf("the partial file is left: %v", err)
	}
	if _, err := BackupSQLite(ctx, path, out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("a backup over an existing file: %v", err)
	}
	st.Close()

	// A file that is not a store is refused, and the store left as it was.
	junk := filepath.Join(dir, "junk")
	os.WriteFile(junk, []byte(strings.Repeat("not a database ", 1000)), 0o600)
	if _, err := RestoreSQLite(ctx, path, junk); err == nil || !strings.Contains(err.Error(), "not") {
		t.Fatalf("restoring junk: %v", err)
	}
	before, _ := os.ReadFile(path)
	res, err := RestoreSQLite(ctx, path, out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Envelopes != info.Envelopes || res.Instance != info.Instance {
		t.Fatalf("restored %+v, backed up %+v", res, info)
	}
	if replaced, _ := os.ReadFile(path + replacedSuffix); len(replaced) != len(before) {
		t.Fatalf("the replaced store is not kept: %d bytes, was %d", len(replaced), len(before))
	}
	// Onto a new machine: no store there yet.
	fresh := filepath.Join(t.TempDir(), "new", "relay.db")
	if res, err := RestoreSQLite(ctx, fresh, out); err != nil || res.Envelopes != info.Envelopes {
		t.Fatalf("restoring onto no store: %+v %v", res, err)
	}
	st, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Instance() != info.Instance {
		t.Fatalf("instance %s after restore, %s before", st.Instance(), info.Instance)
	}
	var total int64
	for i := range topics {
		topic, _ := testTopic(t, byte(i+1))
		var after uint64
		for {
			page, err := st.Read(ctx, topic, after, MaxReadLimit, maxReadBytes)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				if e.Cursor != after+1 {
					t.Fatalf("topic %d: entry %d after %d: not one snapshot", i, e.Cursor, after)
				}
				after = e.Cursor
				total++
			}
			if len(page.Entries) == 0 || after >= page.Last {
				if after != page.Last {
					t.Fatalf("topic %d: read to %d, last %d", i, after, page.Last)
				}
				break
			}
		}
	}
	if total != info.Envelopes {
		t.Fatalf("%d envelopes read from the restored store, %d backed up", total, info.Envelopes)
	}
}
