// Package profile is the wire form of a pursuance's public face
// (docs/directory.md): its signed profile records, which relays keep in
// an opt-in directory, and the join requests ("knocks") an outsider seals
// to a profile's intake key, with their answers sealed back. It encodes,
// signs, verifies, seals and opens; it does no I/O and reads no clock
// (times are passed in), like the other pure packages, so the relay and
// the app check the same bytes the same way.
//
// What a record proves to a reader who holds nothing else: that the key it
// names signed it, at that version, and (with a withdrawal) that the key's
// holder withdrew it for good. That the key belongs to the pursuance the
// record names is proven only by the pursuance's own log, where a profile
// event certifies it (state.Profile): members, linked pursuances and a
// newcomer once joined check it there.
package profile
