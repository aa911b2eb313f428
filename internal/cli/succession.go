package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/charter"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/state"
)

// newSuccessionCmd is `pursuance succession`: claim a role whose holders
// are all inactive, complete the claim, list open claims
// (docs/succession.md).
func newSuccessionCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "succession",
		Short: "Take over a role whose holders have all gone inactive",
		Long: `When every holder of a role has signed nothing for the charter's
inactive-after period, a member whose role may take it over claims it;
after the charter's waiting period the claimant completes the claim and
holds the role. Any event a holder signs in the meantime cancels the
claim. The rules are read from the members' signed times, the same on
every replica; ` + "`pursuance charter show P`" + ` explains them (docs/succession.md).`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	claim := &cobra.Command{
		Use:   "claim P ROLE",
		Short: "Claim a role whose holders are all inactive (proposed instead when the charter asks a quorum)",
		Args:  exactArgs(2, "P ROLE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := e.act(cmd, args[0], func(*state.State, *app.Node) (state.Op, error) {
				return &state.Succession{Role: args[1]}, nil
			})
			if err == nil && res.Accepted && !res.Proposed {
				fmt.Fprintf(e.Stderr, "Claimed %q as %s. Complete it after the waiting period with `pursuance succession complete %s %s`.\n", args[1], res.Event.ID().Short(), args[0], res.Event.ID().Short())
			}
			if err == nil && e.json {
				return e.printJSON(struct {
					Claim    event.ID `json:"claim"`
					Proposed bool     `json:"proposed"`
				}{res.Event.ID(), res.Proposed})
			}
			return err
		},
	}
	complete := &cobra.Command{
		Use:   "complete P CLAIM",
		Short: "Complete a succession claim after its waiting period",
		Args:  exactArgs(2, "P CLAIM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := e.act(cmd, args[0], func(s *state.State, _ *app.Node) (state.Op, error) {
				c, err := findClaim(s, args[1])
				if err != nil {
					return nil, err
				}
				return &state.Succeed{Claim: c.ID}, nil
			})
			return err
		},
	}
	list := &cobra.Command{
		Use:   "list P",
		Short: "List the open succession claims",
		Long: `List the open succession claims: the role, the claimant, when the claim
may be completed and, if a holder came back, why it is cancelled. With
--json: [{"claim","role","claimant","due","cancelled"}], due in RFC 3339,
cancelled "" when not.`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], false, func(_ *app.Node, s *state.State) error {
				type claim struct {
					Claim     event.ID `json:"claim"`
					Role      string   `json:"role"`
					Claimant  string   `json:"claimant"`
					Due       string   `json:"due"`
					Cancelled string   `json:"cancelled"`
				}
				out := []claim{}
				for _, c := range s.Claims() {
					out = append(out, claim{c.ID, c.Role, c.Claimant.String(), rfc3339(c.Due), c.Cancelled})
				}
				if e.json {
					return e.printJSON(out)
				}
				if len(out) == 0 {
					fmt.Fprintln(e.Stderr, "No open succession claims.")
				}
				for _, c := range s.Claims() {
					status := "due " + rfc3339(c.Due)
					if c.Cancelled != "" {
						status = "cancelled: " + c.Cancelled
					}
					fmt.Fprintf(e.Stdout, "%s  %s claimed by %s, %s\n", c.ID.Short(), c.Role, s.NameOf(c.Claimant), status)
				}
				return nil
			})
		},
	}
	cmd.AddCommand(claim, complete, list)
	return cmd
}

// findClaim resolves an open claim by a prefix of its ID (at least 4
// characters).
func findClaim(s *state.State, ref string) (state.Claim, error) {
	var match []state.Claim
	for _, c := range s.Claims() {
		if len(ref) >= 4 && strings.HasPrefix(c.ID.String(), strings.ToLower(ref)) {
			match = append(match, c)
		}
	}
	switch len(match) {
	case 0:
		return state.Claim{}, fmt.Errorf("no open succession claim %q (see `pursuance succession list`)", ref)
	case 1:
		return match[0], nil
	}
	return state.Claim{}, fmt.Errorf("%w: claim %q matches %d", app.ErrAmbiguous, ref, len(match))
}

// rfc3339 formats an event time (Unix milliseconds) for people and JSON.
func rfc3339(ms uint64) string {
	return time.UnixMilli(int64(ms)).UTC().Format(time.RFC3339)
}

// clockOffsetVar shifts the clock this home signs with.
const clockOffsetVar = "PURSUANCE_CLOCK_OFFSET"

// clock returns the clock this home's events claim: the system clock,
// shifted by PURSUANCE_CLOCK_OFFSET when set (a number and d, h or m,
// such as 40d or -3h). It is how scripts rehearse a member's absence
// (docs/succession.md) without waiting weeks. A member's clock is its own
// to set in any case; what a lying clock can do is bounded by the rules,
// which read time only from several members' signed events.
func (e *Env) clock() (func() time.Time, error) {
	v := e.Getenv(clockOffsetVar)
	if v == "" {
		return time.Now, nil
	}
	neg := strings.HasPrefix(v, "-")
	secs, err := charter.ParsePeriod(strings.TrimPrefix(v, "-"))
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %v", clockOffsetVar, v, err)
	}
	d := time.Duration(secs) * time.Second
	if neg {
		d = -d
	}
	return func() time.Time { return time.Now().Add(d) }, nil
}
