package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/keys"
	"github.com/pursuance/pursuance/state"
)

// logMagic starts an exported log file (docs/export.md).
const logMagic = "pursuance-log/v2\n"

func (n *Node) rand() io.Reader {
	if n.opts.Rand != nil {
		// A caller's reader (a test's) need not be safe for the
		// concurrent sealing sync does.
		return lockedReader{&n.randMu, n.opts.Rand}
	}
	return rand.Reader
}

type lockedReader struct {
	mu *sync.Mutex
	r  io.Reader
}

func (l lockedReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

// Export writes every event of pursuance p, in log order, to w, each sealed
// in an envelope (docs/export.md): the magic line, then for each event the
// record's length as a uvarint, the envelope's topic and the envelope.
// Nothing else is in the file, so it may travel over channels the group
// does not trust.
//
// Each event is sealed under the generation of the group key that was
// current before it in log order (the first generation for those before
// any), as a relay would have carried it: a member removed along the way
// reads up to its removal and nothing written after the re-key. The
// group's key-updates are then written again under the current
// generation, so that a newcomer holding only that one (from its invite
// code) unchains every earlier one. It returns the number of events
// written, repeats not counted.
func (n *Node) Export(ctx context.Context, p event.ID, w io.Writer) (int, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return 0, err
	}
	gens, err := n.groupEnvelopes(ctx, s)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(logMagic); err != nil {
		return 0, err
	}
	var buf, rec []byte
	write := func(env *genEnv, e *event.Event) error {
		buf = e.AppendEncode(buf[:0])
		sealed, err := env.Seal(buf, n.rand())
		if err != nil {
			return fmt.Errorf("event %s: %w", e.ID().Short(), err)
		}
		topic := env.Topic()
		rec = binary.AppendUvarint(rec[:0], uint64(len(topic)+len(sealed)))
		rec = append(append(rec, topic[:]...), sealed...)
		_, err = bw.Write(rec)
		return err
	}
	count := 0
	cur := gens.first
	var updates []*event.Event
	err = n.st.Iterate(ctx, p, func(e *event.Event) error {
		if err := write(cur, e); err != nil {
			return err
		}
		count++
		if env, ok := gens.by[e.ID()]; ok {
			cur = env
			updates = append(updates, e)
		}
		return nil
	})
	if err != nil {
		return count, err
	}
	for _, e := range updates {
		if err := write(gens.last, e); err != nil {
			return count, err
		}
		for _, env := range gens.behind[e.ID()] {
			if err := write(env, e); err != nil {
				return count, err
			}
		}
	}
	return count, bw.Flush()
}

// groupGens are the envelopes of the group key generations a member holds:
// by the key-update that published each, the first and the current.
type groupGens struct {
	by          map[event.ID]*genEnv
	first, last *genEnv
	// behind places a group key update also under older generations its
	// recipients may be stuck on (state.State.Behind): a newcomer whose
	// invite sealed a generation that was replaced before it joined reads
	// its re-key there.
	behind map[event.ID][]*genEnv
}

// genEnv is one group generation's envelopes and topic key.
type genEnv struct {
	*keys.Envelopes
	topicKey *identity.SigningKey
}

// groupEnvelopes returns the envelopes of every group key generation of s
// this member holds; it must hold at least one.
func (n *Node) groupEnvelopes(ctx context.Context, s *state.State) (groupGens, error) {
	ring, err := n.KeyRing(ctx, s)
	if err != nil {
		return groupGens{}, err
	}
	g := groupGens{by: map[event.ID]*genEnv{}}
	held := map[event.ID]keys.Key{}
	for _, h := range ring {
		if h.Key.Scope.IsGroup() {
			held[h.Update] = h.Key
		}
	}
	cur, _ := s.CurrentKey("")
	for _, kg := range s.KeyGenerations("") {
		k, ok := held[kg.Update]
		if !ok {
			continue
		}
		envs, err := keys.NewEnvelopes(&k)
		if err != nil {
			return groupGens{}, err
		}
		_, tk, err := k.Topic()
		if err != nil {
			return groupGens{}, err
		}
		env := &genEnv{envs, tk}
		g.by[kg.Update] = env
		if g.first == nil || kg.Gen == 1 {
			g.first = env
		}
		g.last = env
	}
	if env, ok := g.by[cur.Update]; ok {
		g.last = env
	}
	g.behind = map[event.ID][]*genEnv{}
	for update, older := range s.Behind("") {
		for _, o := range older {
			if env, ok := g.by[o]; ok && env != g.last {
				g.behind[update] = append(g.behind[update], env)
			}
		}
	}
	if g.first == nil {
		return groupGens{}, fmt.Errorf("you hold no group key of %s: nothing to seal its log with (a member who holds one must re-key to you)", s.Name())
	}
	return g, nil
}

// ImportResult says what an import did.
type ImportResult struct {
	Read, Stored, Duplicates, Rejected, Pending int
	// Unreadable counts envelopes no key of this member opens: sealed
	// under a group key it was never given, or not envelopes at all.
	Unreadable int
}

// maxEnvelope bounds one record of a log file.
const maxEnvelope = keys.TopicSize + 1<<20

// ErrNoKey is returned by Import when no envelope of a file opens.
var ErrNoKey = errors.New("no key of yours opens this log file")

// Import reads an exported log, opens the envelopes this member's keys
// open (learning more keys from what it opens, as often as needed), and
// ingests the events: each is verified (signature, chain, links) like an
// event from any peer; bad ones are counted in Rejected and skipped.
func (n *Node) Import(ctx context.Context, r io.Reader) (ImportResult, error) {
	if err := n.holdsHome(); err != nil {
		return ImportResult{}, err
	}
	br := bufio.NewReader(r)
	magic := make([]byte, len(logMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != logMagic {
		return ImportResult{}, errors.New("not a pursuance log file (it must start with \"pursuance-log/v2\")")
	}
	var res ImportResult
	type record struct {
		topic keys.Topic
		env   []byte
	}
	var recs []record
	for {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("log file: %w", err)
		}
		if size < keys.TopicSize || size > maxEnvelope {
			return res, fmt.Errorf("log file: record %d is %d bytes, not an envelope", len(recs)+1, size)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return res, fmt.Errorf("log file: record %d: %w", len(recs)+1, err)
		}
		var rec record
		copy(rec.topic[:], b)
		rec.env = b[keys.TopicSize:]
		recs = append(recs, rec)
	}
	res.Read = len(recs)
	chains := map[event.ID][]*state.KeyUpdate{} // group key-updates opened, by pursuance
	seen := map[[32]byte]bool{}                 // events written twice (docs/export.md) count once
	opened := make([]bool, len(recs))
	done := make([]bool, len(recs)) // opened, or failed under its topic's key
	tried := map[keys.Topic]bool{}
	for {
		envs, err := n.envelopeKeys(ctx, chains)
		if err != nil {
			return res, err
		}
		var batch [][]byte
		for i, rec := range recs {
			env := envs[rec.topic]
			if done[i] || env == nil {
				continue
			}
			done[i] = true
			if b, err := env.Open(rec.env); err == nil {
				opened[i] = true
				if h := sha256.Sum256(b); !seen[h] {
					seen[h] = true
					batch = append(batch, b)
					noteGroupUpdate(b, chains)
				}
			}
		}
		progress := false
		for t := range envs {
			if !tried[t] {
				tried[t], progress = true, true
			}
		}
		if len(batch) > 0 {
			out, err := n.in.Ingest(ctx, batch)
			if err != nil {
				return res, err
			}
			res.Stored += len(out.Accepted)
			res.Duplicates += out.Duplicates
			res.Rejected += len(out.Rejected)
		}
		if len(batch) == 0 && !progress {
			break
		}
	}
	for i := range recs {
		if !opened[i] {
			res.Unreadable++
		}
	}
	res.Read = len(seen) + res.Unreadable
	res.Pending = n.in.PendingCount()
	if res.Read > 0 && res.Unreadable == res.Read {
		return res, fmt.Errorf("%w: it was sealed under a group key this home was never given (if you were invited, `pursuance join CODE --log FILE`)", ErrNoKey)
	}
	return res, nil
}

// noteGroupUpdate keeps the body of an event if it is a signed key-update
// of a group key: Import and Sync unchain with it (a chained seed), or open
// the seed sealed to this member in it, before the event itself can be
// ingested — its predecessors may be sealed under the very generation it
// publishes (Sync pushes under the newest one) or chains. A chain that
// opens under a key one holds, or a box that opens with one's own KEM key,
// is its own proof of the seed; the keys are only ever used to read
// topics, never to seal (that takes the rules' verdict, State).
func noteGroupUpdate(b []byte, chains map[event.ID][]*state.KeyUpdate) {
	e, err := event.Decode(b)
	if err != nil || e.Kind != event.KindKeyUpdate || e.Body() == nil || e.VerifySignature() != nil {
		return
	}
	op, err := state.DecodeOp(e.Kind, e.Body())
	if err != nil {
		return
	}
	if ku, ok := op.(*state.KeyUpdate); ok && ku.Role == "" {
		chains[e.PursuanceID()] = append(chains[e.PursuanceID()], ku)
	}
}

// envelopeKeys returns the envelopes of every group key generation this
// member holds, in every pursuance it holds or was invited into, and of
// those these hold chained in chains, by topic.
func (n *Node) envelopeKeys(ctx context.Context, chains map[event.ID][]*state.KeyUpdate) (map[keys.Topic]*keys.Envelopes, error) {
	ks, err := n.groupKeys(ctx, nil, chains)
	if err != nil {
		return nil, err
	}
	out := make(map[keys.Topic]*keys.Envelopes, len(ks))
	for t, k := range ks {
		if out[t], err = keys.NewEnvelopes(&k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// groupKeys returns every group key generation this member holds, by
// topic: in pursuance only (every pursuance on the home or invited into
// when nil), and those chained under them in chains.
func (n *Node) groupKeys(ctx context.Context, only *event.ID, chains map[event.ID][]*state.KeyUpdate) (map[keys.Topic]keys.Key, error) {
	out := map[keys.Topic]keys.Key{}
	var queue []keys.Key
	add := func(k keys.Key) error {
		t, _, err := k.Topic()
		if err != nil {
			return err
		}
		if _, ok := out[t]; !ok {
			out[t] = k
			queue = append(queue, k)
		}
		return nil
	}
	var ps []event.ID
	if only != nil {
		ps = []event.ID{*only}
	} else {
		have, err := n.st.Pursuances(ctx)
		if err != nil {
			return nil, err
		}
		invited, err := n.secretPursuances()
		if err != nil {
			return nil, err
		}
		ps = append(have, invited...)
	}
	for _, p := range ps {
		if _, err := n.st.Get(ctx, p); err == nil {
			s, err := n.State(ctx, p)
			if err != nil {
				return nil, err
			}
			for _, h := range s.Held() {
				if h.Key.Scope.IsGroup() {
					if err := add(h.Key); err != nil {
						return nil, err
					}
				}
			}
		}
		sec, err := n.readSecrets(p)
		if err != nil {
			return nil, err
		}
		for _, k := range sec.Group {
			if err := add(k); err != nil {
				return nil, err
			}
		}
		// Seeds sealed to this member in key updates read but not yet
		// ingested (noteGroupUpdate).
		me := n.me()
		cur, retired := n.memberKEMs()
		for _, ku := range chains[p] {
			i := slices.IndexFunc(ku.Boxes, func(s state.SealedSeed) bool { return s.Member == me })
			if i < 0 {
				continue
			}
			for _, kem := range append([]*identity.KEMPrivateKey{cur}, retired...) {
				if k, err := keys.OpenSeed(keys.Scope{Pursuance: p}, ku.Gen, ku.Boxes[i].Box, me, kem); err == nil {
					if err := add(k); err != nil {
						return nil, err
					}
					break
				}
			}
		}
	}
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		for _, ku := range chains[k.Scope.Pursuance] {
			if ku.Gen != k.Gen {
				continue
			}
			if len(ku.Chain) > 0 {
				if prev, err := keys.Unchain(&k, ku.Chain); err == nil {
					if err := add(prev); err != nil {
						return nil, err
					}
				}
			}
			for _, sib := range ku.Siblings {
				if prev, err := keys.UnchainSibling(&k, sib.Gen, sib.Prev, sib.Chain); err == nil {
					if err := add(prev); err != nil {
						return nil, err
					}
				}
			}
		}
	}
	return out, nil
}

func newEnvelopes(k keys.Key) (*keys.Envelopes, error) { return keys.NewEnvelopes(&k) }
