package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pursuance/pursuance/event"
)

// logMagic starts an exported log file (docs/export.md).
const logMagic = "pursuance-log/v1\n"

func (n *Node) rand() io.Reader {
	if n.opts.Rand != nil {
		return n.opts.Rand
	}
	return rand.Reader
}

// Export writes every event of pursuance p, in log order, to w: the magic
// line, then each event's encoding preceded by its length as a uvarint. It
// returns the number of events written.
func (n *Node) Export(ctx context.Context, p event.ID, w io.Writer) (int, error) {
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString(logMagic); err != nil {
		return 0, err
	}
	count := 0
	var buf []byte
	err := n.st.Iterate(ctx, p, func(e *event.Event) error {
		buf = e.AppendEncode(binary.AppendUvarint(buf[:0], uint64(e.EncodedSize())))
		count++
		_, err := bw.Write(buf)
		return err
	})
	if err != nil {
		return count, err
	}
	return count, bw.Flush()
}

// ImportResult says what an import did.
type ImportResult struct {
	Read, Stored, Duplicates, Rejected, Pending int
}

// Import reads an exported log and ingests its events: each is verified
// (signature, chain, links) like an event from any peer; bad ones are
// counted in Rejected and skipped.
func (n *Node) Import(ctx context.Context, r io.Reader) (ImportResult, error) {
	br := bufio.NewReader(r)
	magic := make([]byte, len(logMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != logMagic {
		return ImportResult{}, errors.New("not a pursuance log file (it must start with \"pursuance-log/v1\")")
	}
	var res ImportResult
	var batch [][]byte
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out, err := n.in.Ingest(ctx, batch)
		if err != nil {
			return err
		}
		res.Stored += len(out.Accepted)
		res.Duplicates += out.Duplicates
		res.Rejected += len(out.Rejected)
		batch = batch[:0]
		return nil
	}
	for {
		size, err := binary.ReadUvarint(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("log file: %w", err)
		}
		if size > event.MaxEventSize {
			return res, fmt.Errorf("log file: event %d is %d bytes, over the limit", res.Read+1, size)
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return res, fmt.Errorf("log file: event %d: %w", res.Read+1, err)
		}
		res.Read++
		batch = append(batch, b)
		if len(batch) == 10000 {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.Pending = n.in.PendingCount()
	return res, nil
}
