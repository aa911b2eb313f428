package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/identity"
	"github.com/pursuance/pursuance/state"
)

// now returns the claimed time for a new event, Unix milliseconds.
func (n *Node) now() uint64 { return uint64(n.opts.Now().UnixMilli()) }

// Create founds a pursuance under c, with this member as founder, and
// publishes the first generation of the group key and of the founder's
// role key.
func (n *Node) Create(ctx context.Context, c *charter.Charter) (event.ID, error) {
	wire, err := c.MarshalBinary()
	if err != nil {
		return event.ID{}, err
	}
	if n.IsDevice() {
		return event.ID{}, errors.New("a linked device does not found itself: ask your root home to (`pursuance create` here does, through the device mailbox), or found there; the pursuance reaches this device at its next sync")
	}
	// A rotated root shows its root line: the new log knows it as the
	// member from its genesis on (docs/devices.md §6.1).
	line, err := n.rootLine()
	if err != nil {
		return event.ID{}, err
	}
	pub := n.memberPublic()
	body, err := state.EncodeOp(&state.Genesis{Charter: wire, Name: pub.Name, KEM: pub.KEM.Bytes(), Binding: pub.KEMBinding[:], Root: line})
	if err != nil {
		return event.ID{}, err
	}
	ch := event.Chain{Key: n.id.SigningKey()}
	g, err := ch.Genesis(n.now(), body)
	if err != nil {
		return event.ID{}, err
	}
	if err := n.put(ctx, g); err != nil {
		return event.ID{}, err
	}
	// The first generations: the group key, and the key of the role the
	// founder holds.
	for _, role := range []string{"", c.FounderRole()} {
		if _, err := n.Rotate(ctx, g.ID(), role, DoOptions{}); err != nil {
			return g.ID(), fmt.Errorf("app: first keys of %s: %w", g.ID().Short(), err)
		}
	}
	n.carryDevices(ctx, g.ID())
	return g.ID(), nil
}

// put stores one event this member signed, through the ingest path so that
// it is checked like any other.
func (n *Node) put(ctx context.Context, e *event.Event) error {
	if err := n.holdsHome(); err != nil {
		return err
	}
	p := e.PursuanceID()
	before, kept := n.folds.keyOf(p)
	if kept {
		// Whether the state kept is of the store as it is now.
		now, _, err := n.foldKey(ctx, p)
		kept = err == nil && now == before
	}
	res, err := n.in.IngestEvents(ctx, []*event.Event{e})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return fmt.Errorf("app: own event refused by ingest: %v", res.Rejected[0].Err)
	}
	if len(res.Accepted) == 0 && res.Duplicates == 0 {
		return fmt.Errorf("app: own event %s left pending", e.ID().Short())
	}
	n.wroteTo(p)
	if kept {
		if after, _, err := n.foldKey(ctx, p); err == nil {
			n.folds.wrote(p, before, after, e)
		}
	}
	return nil
}

// DoOptions change how Do acts.
type DoOptions struct {
	// Unchecked signs and stores the event without asking the rules
	// first, as a malicious client would.
	Unchecked bool
	// Peers, for Join: relays or members' nodes to fetch the log from,
	// beside the relays the code names.
	Peers []string
	// Export, for Join: a member's export of the log, read instead of
	// fetching it; Imported, when set, receives what reading it did.
	Export   io.Reader
	Imported *ImportResult
}

// Result is what an action did.
type Result struct {
	Event    *event.Event
	Accepted bool   // the verdict of this member's own rules
	Reason   string // why not, when !Accepted (only with Unchecked)
	// Proposed is set when Act proposed the action rather than doing it,
	// because the charter puts it under a quorum of Needed approvals.
	Proposed bool
	Needed   int
	// SyncErr is set when the action stands here but publishing it to the
	// relays failed (it is sent at the next sync).
	SyncErr error
}

// Act is Do, except that an action the charter puts under a quorum is
// proposed instead (unless opts.Unchecked): the Result says so, and
// others approve it with Approve.
func (n *Node) Act(ctx context.Context, p event.ID, op state.Op, opts DoOptions) (Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, err
	}
	if opts.Unchecked {
		return n.do(ctx, s, op, opts)
	}
	signed, needed, proposed, err := proposalFor(s, n.me(), op)
	if err != nil {
		return Result{}, err
	}
	if !proposed {
		return n.do(ctx, s, op, opts)
	}
	res, err := n.do(ctx, s, signed, opts)
	res.Proposed, res.Needed = err == nil, needed
	return res, err
}

// Do signs op as this member's next event in pursuance p, on top of every
// event this home holds, checks it against the rules and stores it. An
// event the rules reject is not stored, and the error wraps
// ErrNotPermitted with the rule's reason, unless opts.Unchecked.
func (n *Node) Do(ctx context.Context, p event.ID, op state.Op, opts DoOptions) (Result, error) {
	s, err := n.State(ctx, p)
	if err != nil {
		return Result{}, err
	}
	return n.do(ctx, s, op, opts)
}

// do is Do against an already folded state of p.
func (n *Node) do(ctx context.Context, s *state.State, op state.Op, opts DoOptions) (Result, error) {
	if err := s.Load(); err != nil {
		return Result{}, err // a state opened from a checkpoint whose events do not load: a write needs them
	}
	if _, member := s.Member(n.me()); !member && !opts.Unchecked {
		if _, joining := op.(*state.Join); !joining {
			return Result{}, &refused{fmt.Errorf("not permitted: you are not a member of %s", s.Name())}
		}
	}
	if !opts.Unchecked {
		// What the member typed, checked before anything is sealed or
		// rotated, and said in the member's terms.
		if err := state.CheckInput(op); err != nil {
			return Result{}, err
		}
	}
	if !state.IsKeyOp(op) && !opts.Unchecked {
		// Keys first: a stale, owed or overdue generation is rotated
		// before anything is written under it.
		var err error
		if s, _, err = n.heal(ctx, s); err != nil {
			return Result{}, err
		}
	}
	if state.IsTaskOp(op) {
		var err error
		if s, op, err = n.prepareTask(ctx, s, op); err != nil {
			return Result{}, err
		}
	}
	e, err := n.sign(ctx, s, op)
	if err != nil {
		return Result{}, err
	}
	res := Result{Event: e, Accepted: true}
	if err := s.Check(e); err != nil {
		if !opts.Unchecked {
			return Result{}, fmt.Errorf("%w", refusal(err))
		}
		res.Accepted, res.Reason = false, err.Error()
	}
	if err := n.put(ctx, e); err != nil {
		return Result{}, err
	}
	switch op.(type) {
	case *state.CharterAmend, *state.Approval:
		// It may rename the pursuance: build the state once more, which
		// records the name in force for lists (nameOf).
		n.State(ctx, s.Pursuance())
	}
	return res, nil
}

// refusal turns a rules verdict into the error a user sees.
func refusal(err error) error {
	if errors.Is(err, charter.ErrNotPermitted) {
		return err
	}
	return &refused{err}
}

type refused struct{ err error }

func (r *refused) Error() string { return r.err.Error() }
func (r *refused) Unwrap() []error {
	return []error{r.err, ErrNotPermitted}
}

// sign makes this member's next event in s's pursuance: seq and backlink
// continue its chain, parents are every head the home holds. A task op is
// sealed for its readers (once the pursuance has keys).
func (n *Node) sign(ctx context.Context, s *state.State, op state.Op) (*event.Event, error) {
	return n.signWith(ctx, s, op, n.id.SigningKey())
}

// signWith is sign with key's chain: this home's signing key, or the
// previous one while it publishes its replacement (rotate.go).
func (n *Node) signWith(ctx context.Context, s *state.State, op state.Op, key *identity.SigningKey) (*event.Event, error) {
	p := s.Pursuance()
	me := key.Public()
	vv, err := n.st.VersionVector(ctx, p)
	if err != nil {
		return nil, err
	}
	if _, keyed := s.CurrentKey(""); keyed && state.IsTaskOp(op) {
		if op, err = n.sealTask(s, op, vv[me]+1); err != nil {
			return nil, err
		}
	}
	if op, err = n.sealDraft(p, op, vv[me]+1); err != nil {
		return nil, err
	}
	body, err := state.EncodeOp(op)
	if err != nil {
		return nil, err
	}
	ch := event.Chain{Key: key, Pursuance: p}
	if seq := vv[me]; seq > 0 {
		last, err := n.st.BySeq(ctx, p, me, seq)
		if err != nil {
			return nil, err
		}
		if len(last) != 1 {
			return nil, fmt.Errorf("app: your own chain in %s forked at seq %d (was this identity used on two machines?)", p.Short(), seq)
		}
		r := last[0].Ref()
		ch.Last = &r
	}
	heads, err := n.st.Heads(ctx, p)
	if err != nil {
		return nil, err
	}
	if len(heads) > event.MaxParents {
		heads = heads[len(heads)-event.MaxParents:]
	}
	refs, err := n.st.Refs(ctx, heads)
	if err != nil {
		return nil, err
	}
	parents := make([]event.Ref, 0, len(refs))
	for _, h := range heads {
		if r, ok := refs[h]; ok {
			parents = append(parents, r)
		}
	}
	slices.SortFunc(parents, func(a, b event.Ref) int { return a.ID.Compare(b.ID) })
	return ch.Next(op.Kind(), parents, n.now(), body)
}
