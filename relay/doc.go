// Package relay is Pursuance's untrusted store-and-forward relay: topics of
// opaque envelopes that clients append to, read from a cursor and follow
// live, over HTTP and WebSocket (docs/relay-protocol.md). A relay knows no
// pursuances, members, kinds or roles: a topic is 32 bytes, an envelope a
// padded ciphertext (docs/keys.md), and a write is authorized only by a
// signature of the topic's own key, which members derive from the group
// key and nobody else holds.
//
// The package holds the protocol's frames (protocol.go), the durable
// store behind an interface with a SQLite implementation and group commit
// (store.go, sqlite.go), the server (server.go) and a client (client.go).
// Anyone may read, create topics and write, so the server bounds what a
// request and a client address may hold, and how many of them at once
// (docs/relay.md, "Limits"): per address and in all (clients.go,
// listener.go), append bodies decoded as they arrive (body.go), reads
// streamed a page at a time and the quotas (limits.go), the live cache in
// bytes (hub.go). The limits are the server's, whatever the store.
package relay
