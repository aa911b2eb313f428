package tortest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// envLong, set to anything, runs the tests that take minutes.
	envLong = "PURSUANCE_TORTEST_LONG"
	// timePeriod is an onion service time period in this network: in a
	// testing network tor makes it one shared-random protocol run, 24
	// voting intervals. Descriptors are placed on the HSDir ring anew
	// for each period.
	timePeriod = 24 * votingInterval
	// newnymEvery spaces the rounds of the long test: tor delays
	// NEWNYM signals that come more often than every ten seconds.
	newnymEvery = 10 * time.Second
	// maxOutage is the longest a fresh client may fail to reach a
	// published onion service, around a time period's change included.
	maxOutage = time.Minute
)

// TestOnionServiceAcrossTimePeriods (PURSUANCE_TORTEST_LONG=1, about nine
// minutes): an onion service stays reachable across two time-period
// changes. Every round the client forgets circuits and descriptors
// (SIGNAL NEWNYM), so each fetch finds the descriptor on the HSDirs anew.
func TestOnionServiceAcrossTimePeriods(t *testing.T) {
	if os.Getenv(envLong) == "" {
		t.Skipf("takes %v: set %s=1 to run it", 2*timePeriod+time.Minute, envLong)
	}
	Skip(t)
	n := Shared(t)
	const greeting = "still here"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, greeting)
	}))
	defer srv.Close()
	client := n.StartClient(t)
	service := n.StartClient(t)
	reply, err := service.Control(t.Context(), "ADD_ONION NEW:ED25519-V3 Flags=Detach,DiscardPK Port=80,"+srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var onion string
	for _, l := range reply {
		if v, ok := strings.CutPrefix(l, "ServiceID="); ok {
			onion = v + ".onion"
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), reachTimeout)
	reach(ctx, t, client.SocksAddr, onion, greeting)
	cancel()

	// Count the client's descriptor fetches, to be sure that each round
	// asked the HSDirs again.
	events, err := client.dialControl(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if _, err := events.do("SETEVENTS HS_DESC"); err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int64
	go func() {
		_ = events.SetDeadline(time.Time{})
		for {
			line, err := events.readLine()
			if err != nil {
				return
			}
			// 650 HS_DESC RECEIVED <address> …
			if f := strings.Fields(line); len(f) > 3 && f[1] == "HS_DESC" && f[2] == "RECEIVED" {
				fetched.Add(1)
			}
		}
	}()

	end := time.Now().Add(2*timePeriod + time.Minute)
	var down time.Time // start of the current outage, if any
	rounds, failed := 0, 0
	for time.Now().Before(end) {
		round := time.Now()
		rounds++
		if _, err := client.Control(t.Context(), "SIGNAL NEWNYM"); err != nil {
			t.Fatal(err)
		}
		body, err := httpGetViaSocks(t.Context(), client.SocksAddr, onion)
		switch {
		case err == nil && body == greeting:
			if !down.IsZero() {
				t.Logf("%s reachable again after %v", onion, time.Since(down).Round(time.Second))
				down = time.Time{}
			}
		default:
			failed++
			if down.IsZero() {
				down = round
				t.Logf("%s unreachable at %s: %v", onion, round.Format(time.TimeOnly), err)
			}
			if time.Since(down) > maxOutage {
				t.Fatalf("%s unreachable for %v", onion, time.Since(down).Round(time.Second))
			}
		}
		time.Sleep(time.Until(round.Add(newnymEvery)))
	}
	t.Logf("%d rounds over %v, %d failed, %d descriptors fetched", rounds, 2*timePeriod+time.Minute, failed, fetched.Load())
	if fetched.Load() < int64(rounds-failed) {
		t.Errorf("%d descriptors fetched in %d successful rounds: NEWNYM did not make the client fetch again", fetched.Load(), rounds-failed)
	}
}
