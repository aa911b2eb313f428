package store_test

import (
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"slices"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
)

// fastLog makes well-formed events quickly, for benchmarks and the crash
// test, where signing with Ed25519 would cost more than storing. Its
// signatures are filler, which the store never checks; the IDs are real
// hashes of the header and that filler. Events form a braided DAG like a
// busy pursuance's: each names one or two of the current heads.
type fastLog struct {
	pid     event.ID
	authors []identity.PublicKey
	last    map[identity.PublicKey]event.Ref
	heads   []event.Ref // the events no event names as a parent
	recent  []event.Ref // a sample of recent events
	rng     *rand.Rand
	n       uint64
}

// newFastLog founds a pursuance by the first of authors keys derived from
// seed, and returns the log with its genesis event.
func newFastLog(seed uint64, authors int) (*fastLog, *event.Event) {
	l := &fastLog{last: map[identity.PublicKey]event.Ref{}, rng: rand.New(rand.NewPCG(seed, 1))}
	for i := range authors {
		var k identity.PublicKey
		binary.BigEndian.PutUint64(k[:], seed)
		binary.BigEndian.PutUint64(k[8:], uint64(i))
		k = sha256.Sum256(k[:])
		l.authors = append(l.authors, k)
	}
	g := l.make(event.Header{Version: event.Version, Author: l.authors[0], Seq: 1, Lamport: 1, Kind: event.KindGenesis}, []byte("genesis"))
	l.pid = g.ID()
	l.last[g.Author] = g.Ref()
	l.heads = []event.Ref{g.Ref()}
	return l, g
}

// resume continues a log from stored state: each author's last event and
// the heads. It is how a crashed writer picks up again.
func resumeFastLog(seed uint64, authors int, pid event.ID, last map[identity.PublicKey]event.Ref, heads []event.Ref) *fastLog {
	l, _ := newFastLog(seed, authors)
	l.pid, l.last, l.heads, l.recent = pid, last, heads, slices.Clone(heads)
	return l
}

// next makes the next event, by a random author. Its parents are usually
// one current head, sometimes two (a merge), and sometimes an older event
// (which starts a branch), so the heads come and go as in a busy log.
func (l *fastLog) next() *event.Event {
	a := l.authors[l.rng.IntN(len(l.authors))]
	h := event.Header{Version: event.Version, Pursuance: l.pid, Author: a, Seq: 1, Kind: event.KindTaskComment}
	lamport := uint64(0)
	if r, ok := l.last[a]; ok {
		h.Seq, h.Backlink, lamport = r.Seq+1, r.ID, r.Lamport
	}
	var parents []event.Ref
	switch {
	case len(l.heads) >= 2 && l.rng.IntN(2) == 0:
		i := l.rng.IntN(len(l.heads))
		j := (i + 1 + l.rng.IntN(len(l.heads)-1)) % len(l.heads)
		parents = []event.Ref{l.heads[i], l.heads[j]}
	case len(l.recent) > 0 && l.rng.IntN(4) == 0:
		parents = []event.Ref{l.recent[l.rng.IntN(len(l.recent))]}
	default:
		parents = []event.Ref{l.heads[l.rng.IntN(len(l.heads))]}
	}
	for _, p := range parents {
		h.Parents = append(h.Parents, p.ID)
		lamport = max(lamport, p.Lamport)
	}
	slices.SortFunc(h.Parents, event.ID.Compare)
	h.Lamport = lamport + 1
	body := make([]byte, 160)
	binary.BigEndian.PutUint64(body, l.n)
	e := l.make(h, body)
	l.heads = slices.DeleteFunc(l.heads, func(r event.Ref) bool { return slices.Contains(h.Parents, r.ID) })
	l.heads = append(l.heads, e.Ref())
	if len(l.recent) < 64 {
		l.recent = append(l.recent, e.Ref())
	} else {
		l.recent[l.rng.IntN(len(l.recent))] = e.Ref()
	}
	l.last[a] = e.Ref()
	return e
}

func (l *fastLog) make(h event.Header, body []byte) *event.Event {
	l.n++
	h.Time = 1_790_000_000_000 + l.n
	h.PayloadHash, h.PayloadSize = event.PayloadHash(body), uint64(len(body))
	var sig [identity.SignatureSize]byte
	binary.BigEndian.PutUint64(sig[:], l.n)
	e, err := event.FromParts(h.AppendEncode(nil), sig[:], body)
	if err != nil {
		panic(err)
	}
	return e
}

// batch makes the next n events.
func (l *fastLog) batch(n int) []*event.Event {
	out := make([]*event.Event, n)
	for i := range out {
		out[i] = l.next()
	}
	return out
}
