package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pursuance/pursuance/app"
	"github.com/pursuance/pursuance/event"
	"github.com/pursuance/pursuance/profile"
	"github.com/pursuance/pursuance/relay"
	"github.com/pursuance/pursuance/state"
)

// Public profiles, the directory and join requests (docs/directory.md).

func newProfileCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Publish or withdraw a pursuance's public profile",
		Long: `A public profile (the pursuance's name, its mission, what it seeks) is
signed and published in the clear on the pursuance's relays, whose
directories may list it ("pursuance discover"). Outsiders send join
requests to it ("pursuance knock"), sealed so that only the holders of its
intake role read them ("pursuance requests").`,
		Args: cobra.ArbitraryArgs,
		RunE: groupRunE,
	}
	cmd.AddCommand(newProfilePublishCmd(e), newProfileWithdrawCmd(e))
	return cmd
}

func newProfilePublishCmd(e *Env) *cobra.Command {
	var d app.ProfileDraft
	cmd := &cobra.Command{
		Use:   "publish P --mission TEXT [--seeking TEXT] [--intake-role ROLE]",
		Short: "Publish P's public profile, or a new version of it",
		Long: `Publish P's public profile under its charter's publish-profile rule: the
profile event goes into P's log, and the signed record onto P's relays.
Holders of --intake-role (default: the role of the profile in force, else
your highest) read and answer join requests. Everything in a profile is
public.`,
		Example: `  pursuance profile publish desk --mission "We verify leaked documents." --seeking "translators" --intake-role editor`,
		Args:    exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(d.Mission) == "" {
				return usageErrorf("missing --mission TEXT")
			}
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				v, res, err := n.ProfilePublish(cmd.Context(), s.Pursuance(), d, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				if res.SyncErr != nil {
					fmt.Fprintf(e.Stderr, "The profile stands in %s, but no relay took it yet: %v\n", s.Name(), res.SyncErr)
				}
				if e.json {
					return e.printJSON(struct {
						Profile  string   `json:"profile"`
						Version  uint64   `json:"version"`
						Intake   string   `json:"intake_role"`
						Relays   []string `json:"relays"`
						Proposed bool     `json:"proposed"`
					}{relay.ProfileKeyHex(v.Key), v.Version, v.IntakeRole, nonNil(v.Relays), res.Proposed})
				}
				fmt.Fprintf(e.Stdout, "Published the profile of %s (version %d, join requests to %s) on %s.\n", v.Name, v.Version, v.IntakeRole, strings.Join(v.Relays, ", "))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&d.Mission, "mission", "", "what the pursuance is for (`TEXT`, public)")
	cmd.Flags().StringVar(&d.Seeking, "seeking", "", "what, or whom, it looks for (`TEXT`, public)")
	cmd.Flags().StringVar(&d.IntakeRole, "intake-role", "", "the `ROLE` whose holders answer join requests")
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func newProfileWithdrawCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:     "withdraw P",
		Short:   "Withdraw P's public profile, for good",
		Example: `  pursuance profile withdraw desk`,
		Args:    exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				res, err := n.ProfileWithdraw(cmd.Context(), s.Pursuance(), app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				e.report(res)
				if res.SyncErr != nil {
					fmt.Fprintf(e.Stderr, "The withdrawal stands in %s, but no relay took it yet: %v\n", s.Name(), res.SyncErr)
				}
				return nil
			})
		},
	}
}

func newDiscoverCmd(e *Env) *cobra.Command {
	var relays []string
	cmd := &cobra.Command{
		Use:   "discover WORDS... --relay URL",
		Short: "Search relays' directories for pursuances",
		Long: `List the pursuances whose public profiles a relay's directory holds and
whose name, mission or what they seek has every word (as a beginning of a
word). Each record is checked: signed by its key, not withdrawn. That the
profile key is the pursuance's own is something only its members can
confirm.`,
		Example: `  pursuance discover leak verification --relay https://relay.example.org
  pursuance discover --relay https://relay.example.org --json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(relays) == 0 {
				return usageErrorf("missing --relay URL")
			}
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			type row struct {
				Pursuance string   `json:"pursuance"`
				Name      string   `json:"name"`
				Mission   string   `json:"mission"`
				Seeking   string   `json:"seeking"`
				Relays    []string `json:"relays"`
				Profile   string   `json:"profile"`
			}
			out := []row{}
			seen := map[string]bool{}
			for _, u := range relays {
				ents, err := n.Discover(cmd.Context(), u, strings.Join(args, " "))
				if err != nil {
					return err
				}
				for _, d := range ents {
					k := relay.ProfileKeyHex(d.Key)
					if seen[k] {
						continue
					}
					seen[k] = true
					out = append(out, row{d.Pursuance.String(), d.Name, d.Mission, d.Seeking, nonNil(d.Relays), k})
				}
			}
			if e.json {
				return e.printJSON(out)
			}
			if len(out) == 0 {
				fmt.Fprintln(e.Stderr, "No pursuance matches.")
			}
			for _, r := range out {
				fmt.Fprintf(e.Stdout, "%s  %s\n  %s\n", r.Pursuance, r.Name, strings.ReplaceAll(r.Mission, "\n", "\n  "))
				if r.Seeking != "" {
					fmt.Fprintf(e.Stdout, "  seeking: %s\n", r.Seeking)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&relays, "relay", nil, "the relay `URL` whose directory to search (repeatable)")
	return cmd
}

func newKnockCmd(e *Env) *cobra.Command {
	var url, message, key string
	cmd := &cobra.Command{
		Use:   "knock P_ID --relay URL --message TEXT",
		Short: "Ask to join a pursuance, through its public profile",
		Long: `Send a join request to the pursuance P_ID, sealed to the intake key of the
public profile the relay at URL holds for it: your name, member ID and the
message. Relays read none of it. Its intake role answers with an invite or
a refusal, which "pursuance answers" reads.`,
		Example: `  pursuance knock 7c1d…(P's ID) --relay https://relay.example.org --message "I translate Farsi; Dana sent me."`,
		Args:    exactArgs(1, "P_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := event.ParseID(strings.TrimSpace(args[0]))
			if err != nil {
				return usageErrorf("name the pursuance by its full ID (64 hex digits), as discover prints it")
			}
			if url == "" {
				return usageErrorf("missing --relay URL")
			}
			var o app.KnockOptions
			if key != "" {
				if o.Profile, err = profile.ParseProfileKey(key); err != nil {
					return usageErrorf("--profile: %v", err)
				}
			}
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			v, err := n.Knock(cmd.Context(), p, url, message, o)
			if err != nil {
				return err
			}
			if e.json {
				return e.printJSON(struct {
					Request string `json:"request"`
				}{v.Request.String()})
			}
			fmt.Fprintf(e.Stderr, "Asked to join %s; `pursuance answers` shows its answer.\n", v.Name)
			fmt.Fprintln(e.Stdout, v.Request)
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "relay", "", "the relay `URL` that holds the pursuance's profile")
	cmd.Flags().StringVar(&message, "message", "", fmt.Sprintf("who you are and why (`TEXT`, at most %d bytes)", profile.MaxMessage))
	cmd.Flags().StringVar(&key, "profile", "", "the profile `KEY` to knock on, when the relay holds several claiming the pursuance")
	return cmd
}

func newRequestsCmd(e *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "requests P",
		Short: "List the join requests to P (holders of its intake role)",
		Example: `  pursuance requests desk
  pursuance requests answer desk 5e95 --invite --role researcher`,
		Args: exactArgs(1, "P"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				reqs, err := n.Requests(cmd.Context(), s.Pursuance())
				if err != nil {
					return err
				}
				if e.json {
					type row struct {
						Request string `json:"request"`
						Name    string `json:"name"`
						Message string `json:"message"`
						At      string `json:"at"`
						Member  string `json:"member"`
						Status  string `json:"status"`
					}
					out := []row{}
					for _, r := range reqs {
						out = append(out, row{r.Request.String(), r.Name, r.Message, r.At.UTC().Format(time.RFC3339), r.Member.String(), r.Status})
					}
					return e.printJSON(out)
				}
				if len(reqs) == 0 {
					fmt.Fprintln(e.Stderr, "No join requests.")
				}
				for _, r := range reqs {
					fmt.Fprintf(e.Stdout, "%s  %s  %s  %s\n  %s\n", r.Request.String()[:12], r.At.UTC().Format(time.DateTime), r.Name, r.Status, strings.ReplaceAll(r.Message, "\n", "\n  "))
				}
				return nil
			})
		},
	}
	cmd.AddCommand(newRequestsAnswerCmd(e))
	return cmd
}

func newRequestsAnswerCmd(e *Env) *cobra.Command {
	var d app.AnswerDraft
	var refuse bool
	var expires time.Duration
	cmd := &cobra.Command{
		Use:     "answer P REQ (--invite --role ROLE | --refuse)",
		Short:   "Answer a join request: an invite into a role, or a refusal",
		Example: `  pursuance requests answer desk 5e95 --invite --role researcher --message "Welcome."`,
		Args:    exactArgs(2, "P REQ"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if d.Invite == refuse {
				return usageErrorf("say --invite --role ROLE or --refuse")
			}
			if d.Invite && d.Role == "" {
				return usageErrorf("missing --role ROLE for the invite")
			}
			d.Expires = expires
			return e.withState(cmd, args[0], true, func(n *app.Node, s *state.State) error {
				res, err := n.RequestAnswer(cmd.Context(), s.Pursuance(), args[1], d, app.DoOptions{Unchecked: e.unchecked})
				if err != nil {
					return err
				}
				if d.Invite {
					e.report(res.Invite)
				}
				if e.json {
					return e.printJSON(struct {
						Request string `json:"request"`
						Status  string `json:"status"`
						Code    string `json:"code"`
					}{res.Request.String(), res.Status, res.Code})
				}
				fmt.Fprintf(e.Stderr, "Answered: %s.\n", res.Status)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&d.Invite, "invite", false, "invite the requester")
	cmd.Flags().StringVar(&d.Role, "role", "", "the `ROLE` of the invite")
	cmd.Flags().BoolVar(&refuse, "refuse", false, "refuse the request")
	cmd.Flags().StringVar(&d.Message, "message", "", "a message to the requester (`TEXT`)")
	cmd.Flags().DurationVar(&expires, "expires", 0, fmt.Sprintf("how long the invite works (default %s)", app.DefaultKnockInviteExpiry))
	return cmd
}

func newAnswersCmd(e *Env) *cobra.Command {
	return &cobra.Command{
		Use:   "answers",
		Short: "The answers to the join requests this home sent",
		Long: `Read the answers to this home's join requests ("pursuance knock") from
the relays they went to. An invite's code joins: pursuance join CODE.`,
		Example: `  pursuance answers
  pursuance answers --json`,
		Args: exactArgs(0, ""),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := e.openNode(cmd.Context())
			if err != nil {
				return err
			}
			defer n.Close()
			as, err := n.Answers(cmd.Context(), e.offline)
			if err != nil {
				return err
			}
			if e.json {
				type row struct {
					Request   string `json:"request"`
					Pursuance string `json:"pursuance"`
					Name      string `json:"name"`
					Status    string `json:"status"`
					Code      string `json:"code"`
					Message   string `json:"message"`
				}
				out := []row{}
				for _, a := range as {
					out = append(out, row{a.Request.String(), a.Pursuance.String(), a.Name, a.Status, a.Code, a.Message})
				}
				return e.printJSON(out)
			}
			if len(as) == 0 {
				fmt.Fprintln(e.Stderr, "No join requests sent from this home.")
			}
			for _, a := range as {
				fmt.Fprintf(e.Stdout, "%s  %s  %s\n", a.Request.String()[:12], a.Name, a.Status)
				if a.Message != "" {
					fmt.Fprintf(e.Stdout, "  %s: %s\n", a.From, strings.ReplaceAll(a.Message, "\n", "\n  "))
				}
				if a.Code != "" {
					fmt.Fprintf(e.Stdout, "  join with: pursuance join %s\n", a.Code)
				}
			}
			return nil
		},
	}
}
