package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/relay/natstest"
)

// `pursuance relay --store nats://…` twice: two fronts of one relay over
// an embedded NATS server; an envelope appended through one reaches a
// live subscriber of the other.
func TestRelayStoreNATS(t *testing.T) {
	server := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := regexp.MustCompile(`(?m)^http://127\.0\.0\.1:\d+$`)
	var fronts []string
	var dones []chan int
	for range 2 {
		e, _, _ := testEnv(nil, nil)
		errOut := &syncBuffer{}
		e.Stderr, e.Context = errOut, ctx
		done := make(chan int, 1)
		go func() {
			done <- Run([]string{"relay", "--listen", "127.0.0.1:0", "--store", server + "?stream=CLITEST"}, e)
		}()
		dones = append(dones, done)
		deadline := time.Now().Add(30 * time.Second)
		for !url.MatchString(errOut.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("the relay did not start:\n%s", errOut.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		fronts = append(fronts, url.FindString(errOut.String()))
	}
	k := keys.Key{Scope: keys.Scope{Pursuance: event.ID{9}}, Gen: 1}
	topic, key, err := k.Topic()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []relay.Entry, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go relay.NewClient(fronts[1], nil).Subscribe(sctx, topic, 0, func(es []relay.Entry) error {
		got <- es
		return nil
	})
	env := bytes.Repeat([]byte{7}, 1024)
	// Append once the subscription is live on the other front (its
	// metrics count it): the entry must come by the live feed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(fronts[1] + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b, []byte("\npursuance_relay_subscribers 1\n")) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the subscription did not open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, err := relay.NewClient(fronts[0], nil).Append(ctx, topic, key, [][]byte{env})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case es := <-got:
		if len(es) != 1 || es[0].Cursor != res.Cursors[0] || !bytes.Equal(es[0].Envelope, env) {
			t.Fatalf("the other front's subscriber got %+v", es)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other front's subscriber got nothing")
	}
	cancel()
	for _, d := range dones {
		if code := <-d; code != 0 {
			t.Errorf("the relay exited %d", code)
		}
	}
}

func TestRelayStoreFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"relay"}, "missing --data DIR"},
		{[]string{"relay", "--store", "postgres://x"}, "want sqlite:DIR or nats://"},
		{[]string{"relay", "--store", "sqlite:/a", "--data", "/b"}, "name two directories"},
		{[]string{"relay", "--store", "nats://"}, "at least one server"},
		{[]string{"relay", "--store", "nats://127.0.0.1:1?replicas=9"}, "1 to 5 ways"},
		{[]string{"relay", "--store", "nats://127.0.0.1:1", "--onion"}, "--onion keeps the service's key in --data"},
	} {
		e, _, errOut := testEnv(nil, nil)
		if code := Run(c.args, e); code == 0 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%q: exit %d, %q; want %q", c.args, code, errOut.String(), c.want)
		}
	}
}
