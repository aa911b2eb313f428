package keys

import "github.com/pursuance/pursuance/event"

// labelAttach derives the secret under which a task's attachments are
// chunked and encrypted (docs/attachments.md). Part of the format.
const labelAttach = "pursuance/v1/attach-secret"

// AttachSecret returns the attachment secret of one task under this
// generation: the files its readers attach are cut and encrypted under it,
// so that the same content attached twice to the task under the same
// generation yields the same blobs (an edited file re-uploads only the
// changed chunks), and a new generation (after a removal) yields others.
// Only holders of the generation can compute it.
func (k *Key) AttachSecret(task event.ID) [32]byte {
	var out [32]byte
	copy(out[:], k.derive(labelAttach+"\x00"+string(task[:]), 32))
	return out
}
