package tor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/internal/tor/faketor"
)

func newFake(t *testing.T, opts faketor.Options) *faketor.Tor {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	f, err := faketor.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func attachFake(t *testing.T, f *faketor.Tor) *Tor {
	t.Helper()
	tr, err := Attach(context.Background(), f.ControlAddr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestAttachAuthentication: Attach authenticates by SAFECOOKIE when tor
// offers it (the cookie never crosses the connection), by COOKIE
// otherwise, with nothing when tor asks nothing, and refuses a password
// with a line that says what to set. It finds tor's SOCKS port.
func TestAttachAuthentication(t *testing.T) {
	for _, c := range []struct {
		auth    string
		want    []string // the commands, in order
		wantErr error
	}{
		{"", []string{"PROTOCOLINFO 1", "AUTHCHALLENGE SAFECOOKIE", "AUTHENTICATE", "GETINFO net/listeners/socks"}, nil},
		{"COOKIE", []string{"PROTOCOLINFO 1", "AUTHENTICATE", "GETINFO net/listeners/socks"}, nil},
		{"NULL", []string{"PROTOCOLINFO 1", "AUTHENTICATE", "GETINFO net/listeners/socks"}, nil},
		{"HASHEDPASSWORD", []string{"PROTOCOLINFO 1"}, ErrPasswordAuth},
	} {
		t.Run("auth="+c.auth, func(t *testing.T) {
			f := newFake(t, faketor.Options{Auth: c.auth})
			tr, err := Attach(context.Background(), f.ControlAddr())
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Attach: %v, want %v", err, c.wantErr)
			}
			var got []string
			for _, cmd := range f.Commands() {
				if strings.HasPrefix(cmd, "AUTHCHALLENGE") {
					cmd = "AUTHCHALLENGE SAFECOOKIE"
				}
				got = append(got, cmd)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("commands %q, want %q", got, c.want)
			}
			if err != nil {
				return
			}
			defer tr.Close()
			if tr.SOCKSAddr() != f.SOCKSAddr() || tr.Owned() {
				t.Errorf("SOCKS %s (want %s), owned %v", tr.SOCKSAddr(), f.SOCKSAddr(), tr.Owned())
			}
		})
	}
}

// TestAttachWrongCookie: a control port whose cookie file is not tor's
// cookie (another size) is refused without sending it; one that does not
// know the cookie it names fails SAFECOOKIE's check of the server's hash.
func TestAttachWrongCookie(t *testing.T) {
	f := newFake(t, faketor.Options{})
	if err := os.WriteFile(f.CookieFile(), []byte("not a cookie"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(context.Background(), f.ControlAddr()); err == nil || !strings.Contains(err.Error(), "not a tor authentication cookie") {
		t.Fatalf("a cookie file of the wrong size: %v", err)
	}
	// A cookie of the right size that is not the one the port holds.
	if err := os.WriteFile(f.CookieFile(), make([]byte, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Attach(context.Background(), f.ControlAddr()); err == nil || !strings.Contains(err.Error(), "does not know tor's cookie") {
		t.Fatalf("a control port that does not hold the cookie: %v", err)
	}
	for _, cmd := range f.Commands() {
		if cmd == "AUTHENTICATE" {
			t.Errorf("authenticated with a port that failed the challenge")
		}
	}
}

// TestAttachNotTor: an address where nothing listens, or something that
// is not a control port, fails with a line that says so.
func TestAttachNotTor(t *testing.T) {
	dead := scripted(t, func(string) ([]string, []string) { return nil, nil })
	if _, err := Attach(context.Background(), dead); err == nil || !strings.Contains(err.Error(), "is it tor's control port") {
		t.Errorf("a port that hangs up: %v", err)
	}
	if _, err := Attach(context.Background(), "nonsense"); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Errorf("a malformed address: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "nothing.sock")
	if _, err := Attach(context.Background(), "unix:"+sock); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("a socket that is not there: %v", err)
	}
}

// TestStatusAndBootstrap: Status reports tor's progress; WaitBootstrapped
// reports each change and returns at 100%; stuck, it ends with its
// context, naming where tor was and its warning.
func TestStatusAndBootstrap(t *testing.T) {
	f := newFake(t, faketor.Options{Bootstrap: 10})
	tr := attachFake(t, f)
	st, err := tr.Status(context.Background())
	if err != nil || st.Bootstrap != 10 || !st.Running {
		t.Fatalf("Status: %+v %v", st, err)
	}
	f.SetBootstrap(15, "Connecting to a relay", "Network is unreachable")
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	err = tr.WaitBootstrapped(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "stuck at 15%") || !strings.Contains(err.Error(), "Network is unreachable") {
		t.Fatalf("stuck: %v", err)
	}
	var seen []int
	go func() {
		time.Sleep(300 * time.Millisecond)
		f.SetBootstrap(50, "Loading", "")
		time.Sleep(300 * time.Millisecond)
		f.SetBootstrap(100, "Done", "")
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.WaitBootstrapped(ctx, func(s Status) { seen = append(seen, s.Bootstrap) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []int{15, 50, 100}) {
		t.Errorf("progress reported %v, want [15 50 100]", seen)
	}
}

// TestStatusWhenTorStops: once tor is gone, Status fails and
// WaitBootstrapped returns rather than waiting.
func TestStatusWhenTorStops(t *testing.T) {
	f := newFake(t, faketor.Options{Bootstrap: 10})
	tr := attachFake(t, f)
	done := make(chan error, 1)
	go func() { done <- tr.WaitBootstrapped(context.Background(), nil) }()
	time.Sleep(100 * time.Millisecond)
	f.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrControlClosed) {
			t.Errorf("WaitBootstrapped after tor stopped: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitBootstrapped waits on a tor that stopped")
	}
	if _, err := tr.Status(context.Background()); !errors.Is(err, ErrControlClosed) {
		t.Errorf("Status after tor stopped: %v", err)
	}
}
