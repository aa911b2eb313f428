package cli

import "github.com/spf13/cobra"

// examples are the examples `pursuance help COMMAND` shows for commands
// that do not set their own, by command path. Like the commands' own, they
// name a pursuance "desk" (or the README's "Night Desk") and tasks by ID
// prefixes such as 3f2a.
var examples = map[string]string{
	"pursuance link": `  pursuance link create desk --to 7c1d…(B's ID) --send-role editor   # prints pl1…
  pursuance link accept research pl1… --deliver-to researcher
  pursuance links desk`,
	"pursuance link accept": `  pursuance link accept research pl1… --deliver-to researcher`,
	"pursuance link end": `  pursuance links desk
  pursuance link end desk 5e95`,
	"pursuance links": `  pursuance links desk
  pursuance links desk --json`,
	"pursuance handoff": `  pursuance handoff desk 3f2a --to 7c1d…(B's ID)
  pursuance handoff desk 3f2a --to 7c1d… --json`,
	"pursuance task report": `  pursuance task report research 9d0e --status Done --comment "the files are real"
  pursuance task status research 9d0e WorkingOn --report`,
	"pursuance profile": `  pursuance profile publish desk --mission "We verify leaked documents." --intake-role editor
  pursuance profile withdraw desk`,
	"pursuance id": `  pursuance id new --name Alice
  pursuance id show --json`,
	"pursuance bench": `  pursuance bench ingest --events 100000 --authors 20
  pursuance bench relay --json`,
	"pursuance charter": `  pursuance charter show "Night Desk" > charter.yaml
  pursuance charter amend "Night Desk" charter.yaml`,
	"pursuance charter show": `  pursuance charter show "Night Desk"
  pursuance charter show desk > charter.yaml`,
	"pursuance charter amend": `  pursuance charter show desk > charter.yaml   # edit it, then:
  pursuance charter amend desk charter.yaml`,
	"pursuance approve": `  pursuance proposals desk
  pursuance approve desk 9c1e`,
	"pursuance succession": `  pursuance members desk --json        # who is inactive since when
  pursuance succession claim desk editor
  pursuance succession list desk
  pursuance succession complete desk 3f2a`,
	"pursuance succession claim": `  pursuance succession claim desk editor     # every editor inactive
  pursuance succession claim desk primary --json`,
	"pursuance succession complete": `  pursuance succession list desk
  pursuance succession complete desk 3f2a    # after the waiting period`,
	"pursuance succession list": `  pursuance succession list desk
  pursuance succession list desk --json`,
	"pursuance proposals": `  pursuance proposals desk
  pursuance proposals desk --json`,
	"pursuance export": `  pursuance export desk --out desk.log
  pursuance export desk --out /media/usb/desk.log`,
	"pursuance import": `  pursuance import desk.log
  pursuance --home /tmp/bob import desk.log`,
	"pursuance invite revoke": `  pursuance invite revoke desk pi1…         # by the code
  pursuance invite revoke desk 7b3c           # by the invite's event ID prefix`,
	"pursuance keys": `  pursuance keys desk
  pursuance keys desk --json`,
	"pursuance rotate": `  pursuance rotate desk                # the group key
  pursuance rotate desk researcher     # the researcher role's key`,
	"pursuance leave": `  pursuance leave desk`,
	"pursuance log": `  pursuance log desk
  pursuance log desk --json | jq '.[] | select(.status == "rejected")'`,
	"pursuance members": `  pursuance members desk
  pursuance members desk --json`,
	"pursuance remove": `  pursuance remove desk Bob
  pursuance remove desk pm1q8…   # by member ID (prefix), when names collide`,
	"pursuance role": `  pursuance role assign desk Bob editor
  pursuance role revoke desk Bob researcher`,
	"pursuance role assign": `  pursuance role assign desk Bob editor`,
	"pursuance role revoke": `  pursuance role revoke desk Bob researcher`,
	"pursuance relays": `  pursuance relays desk
  pursuance relays add desk https://relay.example.org
  pursuance relays remove desk https://old-relay.example.org`,
	"pursuance relays add":    `  pursuance relays add desk https://relay.example.org`,
	"pursuance relays remove": `  pursuance relays remove desk https://old-relay.example.org`,
	"pursuance sync": `  pursuance sync                 # every pursuance on this home
  pursuance sync desk
  pursuance sync desk --peer http://127.0.0.1:8766   # also from another member's node`,
	"pursuance task": `  pursuance task add desk --title "Verify the memo" --visible-to researcher
  pursuance task list desk --filter "@me status:!Done"
  pursuance task show desk 3f2a`,
	"pursuance task show": `  pursuance task show desk 3f2a
  pursuance task show desk 3f2a --json`,
	"pursuance task status": `  pursuance task status desk 3f2a WorkingOn
  pursuance task status desk 3f2a done`,
	"pursuance task assign": `  pursuance task assign desk 3f2a Bob
  pursuance task assign desk 3f2a role:researcher`,
	"pursuance task unassign": `  pursuance task unassign desk 3f2a Bob`,
	"pursuance task comment":  `  pursuance task comment desk 3f2a "The memo is dated May."`,
	"pursuance task edit": `  pursuance task edit desk 3f2a --title "Verify the May memo" --due 2026-12-31
  pursuance task edit desk 3f2a --due ""          # no due date
  pursuance task edit desk 3f2a --parent 9b01     # a subtask of 9b01
  pursuance task edit desk 3f2a --parent root     # back to the top`,
	"pursuance task archive": `  pursuance task archive desk 3f2a`,
	"pursuance tor": `  pursuance tor on
  pursuance tor status --json
  pursuance --tor sync desk`,
	"pursuance tor on": `  pursuance tor on
  pursuance tor on --tor-control 127.0.0.1:9051   # a tor already running`,
	"pursuance tor off": `  pursuance tor off`,
	"pursuance tor status": `  pursuance tor status
  pursuance tor status --json`,
}

// addExamples gives every command under c that has none its examples.
func addExamples(c *cobra.Command) {
	for _, sub := range c.Commands() {
		addExamples(sub)
	}
	if c.Example == "" {
		c.Example = examples[c.CommandPath()]
	}
}
