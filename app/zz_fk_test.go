package app

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/pursuance/pursuance/identity/keystore"
)

func TestZZFoldKeyCost(t *testing.T) {
	home := os.Getenv("FK_HOME")
	if home == "" {
		t.Skip()
	}
	ctx := context.Background()
	id, err := keystore.Open(home, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		n, err := Open(ctx, home, id, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ps, _ := n.Pursuances(ctx)
		p := ps[0].ID
		t0 := time.Now()
		n.foldKey(ctx, p)
		t1 := time.Now()
		n.State(ctx, p)
		t2 := time.Now()
		n.State(ctx, p)
		t3 := time.Now()
		t.Logf("run %d: foldKey %s, State %s, State again %s", i, t1.Sub(t0), t2.Sub(t1), t3.Sub(t2))
		n.Close()
	}
}
