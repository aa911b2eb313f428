// Package app is the service that Pursuance's user interfaces share: the
// command line and, later, the web UI call it, never the store directly.
//
// A Node is one member's home: its identity, its event store, and the
// pursuances in it. Reading (list, show, log) needs only the public half of
// the identity; acting (create, task add, invite) signs events and needs
// the identity unlocked with its passphrase. Every action is checked
// against the pursuance's rules before it is signed, so an honest client
// never publishes what every other client would reject; Unchecked skips
// that check, to play a malicious client in tests.
package app
