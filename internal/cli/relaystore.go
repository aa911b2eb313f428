package cli

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/pursuance/pursuance/relay"
)

// resolveRelayStore checks --store and --data together: --store sqlite:DIR
// is --data DIR; a NATS store needs --data only for an onion service.
func resolveRelayStore(f *relayFile) error {
	switch {
	case f.Store == "":
		if f.Data == "" {
			return usageErrorf("missing --data DIR (where the relay keeps its envelopes) or --store nats://HOST:PORT")
		}
		f.Store = "sqlite:" + f.Data
	case strings.HasPrefix(f.Store, "sqlite:"):
		dir := strings.TrimPrefix(f.Store, "sqlite:")
		if dir == "" {
			return usageErrorf("--store sqlite:DIR needs a directory")
		}
		if f.Data != "" && filepath.Clean(f.Data) != filepath.Clean(dir) {
			return usageErrorf("--store %s and --data %s name two directories: give one", f.Store, f.Data)
		}
		f.Data = dir
	case strings.HasPrefix(f.Store, "nats://"):
		if _, _, err := relay.ParseNATSStore(f.Store); err != nil {
			return usageErrorf("--store: %v", err)
		}
		if (f.Onion || f.OnionOnly) && f.Data == "" {
			return usageErrorf("--onion keeps the service's key in --data DIR: give one besides --store")
		}
	default:
		return usageErrorf("--store %q: want sqlite:DIR or nats://HOST:PORT[,HOST:PORT…]", f.Store)
	}
	return nil
}

// storeDir is the directory whose disk the relay's store fills ("" for a
// NATS store: the cluster's servers bound their own disks).
func (f *relayFile) storeDir() string {
	if strings.HasPrefix(f.Store, "sqlite:") {
		return f.Data
	}
	return ""
}

// openRelayStore opens the store --store names.
func openRelayStore(ctx context.Context, f relayFile, r relay.Retention, log *slog.Logger) (relay.Store, error) {
	if servers, o, err := relay.ParseNATSStore(f.Store); err == nil {
		o.MaxAge, o.Logger = r.MaxAge, log.With("component", "nats")
		st, err := relay.OpenNATS(ctx, servers, o)
		if err != nil {
			return nil, fmt.Errorf("the relay's NATS store: %w", err)
		}
		return st, nil
	}
	st, err := relay.OpenSQLite(ctx, filepath.Join(f.Data, relayDBName))
	if err != nil {
		return nil, fmt.Errorf("relay store in %s: %w", f.Data, err)
	}
	return st, nil
}
