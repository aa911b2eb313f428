// Command pursuance runs a member's side of Pursuance: identity, node, relay
// and user interface. Run `pursuance --help` for its commands.
package main

import (
	"os"

	"github.com/pursuance/pursuance/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
