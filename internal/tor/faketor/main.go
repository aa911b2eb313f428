package faketor

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Main runs the double as a tor binary: `--version`, or `-f TORRC` with
// the options tor.Start writes (DataDirectory, ControlPortWriteToFile,
// CookieAuthFile, __OwningControllerProcess; the rest are ignored) and
// these of its own:
//
//	FakeTorNetwork DIR          the shared network directory (Options.Network)
//	FakeTorMap HOST:PORT TARGET a clear-net name the SOCKS port reaches (Map)
//	FakeTorBootstrap N STEP     start at N% and climb 10% every STEP
//	FakeTorUploadDelay D        Options.UploadDelay
//	FakeTorExtendedErrors 1     Options.ExtendedErrors
//	FakeTorFail TEXT            log "[err] TEXT" and exit 1 at once
//
// It logs to stdout as tor does, and exits when its owning control
// connection closes, when the owner process is gone, or on SIGTERM or
// SIGINT. It returns the exit status.
func Main() int {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--version" {
		fmt.Printf("Tor version %s.\n", Version)
		return 0
	}
	var torrc string
	for i := 0; i < len(args); i++ {
		if args[i] == "-f" && i+1 < len(args) {
			torrc = args[i+1]
		}
	}
	if torrc == "" {
		fmt.Println("[err] faketor: no -f TORRC")
		return 1
	}
	cfg, err := readTorrc(torrc)
	if err != nil {
		fmt.Printf("[err] faketor: %v\n", err)
		return 1
	}
	logf := func(level, format string, a ...any) {
		fmt.Printf("%s [%s] %s\n", time.Now().Format("Jan 02 15:04:05.000"), level, fmt.Sprintf(format, a...))
	}
	logf("notice", "Tor %s running on a pretend network.", Version)
	if v := cfg["FakeTorFail"]; len(v) > 0 {
		logf("err", "%s", v[0])
		return 1
	}
	dir := first(cfg, "DataDirectory")
	opts := Options{Dir: dir, Network: first(cfg, "FakeTorNetwork"), ExtendedErrors: first(cfg, "FakeTorExtendedErrors") == "1"}
	if d, err := time.ParseDuration(first(cfg, "FakeTorUploadDelay")); err == nil {
		opts.UploadDelay = d
	}
	step := time.Duration(0)
	if f := strings.Fields(first(cfg, "FakeTorBootstrap")); len(f) == 2 {
		opts.Bootstrap, _ = strconv.Atoi(f[0])
		step, _ = time.ParseDuration(f[1])
	}
	f, err := New(opts)
	if err != nil {
		logf("err", "%v", err)
		return 1
	}
	defer f.Close()
	if cf := first(cfg, "CookieAuthFile"); cf != "" && cf != f.cookieFile {
		if err := os.WriteFile(cf, f.cookie, 0o600); err != nil {
			logf("err", "%v", err)
			return 1
		}
		f.cookieFile = cf
	}
	for _, m := range cfg["FakeTorMap"] {
		if hp, target, ok := strings.Cut(m, " "); ok {
			f.Map(hp, strings.TrimSpace(target))
		}
	}
	if pf := first(cfg, "ControlPortWriteToFile"); pf != "" {
		tmp := pf + ".tmp"
		os.WriteFile(tmp, []byte("PORT="+f.ControlAddr()+"\n"), 0o600)
		os.Rename(tmp, pf)
	}
	logf("notice", "Opened Socks listener connection (ready) on %s", f.SOCKSAddr())
	logf("notice", "Opened Control listener connection (ready) on %s", f.ControlAddr())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx = f.ownerContext(ctx)
	if pid, err := strconv.Atoi(first(cfg, "__OwningControllerProcess")); err == nil {
		ctx = watchOwner(ctx, pid)
	}
	if step > 0 {
		go func() {
			for p := opts.Bootstrap; p < 100; {
				select {
				case <-ctx.Done():
					return
				case <-time.After(step):
				}
				p = min(p+10, 100)
				summary := "Loading relay descriptors"
				if p == 100 {
					summary = "Done"
				}
				f.SetBootstrap(p, summary, "")
				logf("notice", "Bootstrapped %d%%: %s", p, summary)
			}
		}()
	}
	<-ctx.Done()
	logf("notice", "Clean shutdown finished. Exiting.")
	return 0
}

func first(cfg map[string][]string, k string) string {
	if v := cfg[k]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// readTorrc reads KEY VALUE lines, unquoting quoted values.
func readTorrc(path string) (map[string][]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	out := map[string][]string{}
	s := bufio.NewScanner(fh)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`) && len(v) >= 2 {
			v = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(v[1 : len(v)-1])
		}
		out[k] = append(out[k], v)
	}
	if d := first(out, "DataDirectory"); d == "" || !filepath.IsAbs(d) {
		return nil, fmt.Errorf("no absolute DataDirectory in %s", path)
	}
	return out, s.Err()
}
