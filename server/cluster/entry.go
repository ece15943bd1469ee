package cluster

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"

	"github.com/sparr-dev/sparr/server/state"
)

// A replicated-log entry is a command's encoding ([state.Encode]), a JSON
// object; one of more than compressAbove bytes is compressed instead:
// the byte 'z' and the encoding, DEFLATE-compressed (RFC 1951). The
// largest commands (a member's report of a thousand replica checks, its
// tokens and their log details) shrink to well under half.
const compressAbove = 16 << 10

// compressedMark starts a compressed entry; an encoding starts with '{'.
const compressedMark = 'z'

// ErrEntry is returned by [DecodeEntry] for bytes that are no entry.
var ErrEntry = errors.New("not a replicated-log entry")

// EncodeEntry returns the entry of cmd.
func EncodeEntry(cmd state.Command) ([]byte, error) {
	b, err := state.Encode(cmd)
	if err != nil || len(b) <= compressAbove {
		return b, err
	}
	var buf bytes.Buffer
	buf.WriteByte(compressedMark)
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(b); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeEntry returns the command of an entry.
func DecodeEntry(b []byte) (state.Command, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrEntry)
	}
	if b[0] != compressedMark {
		return state.Decode(b)
	}
	r := flate.NewReader(bytes.NewReader(b[1:]))
	defer r.Close()
	plain, err := io.ReadAll(io.LimitReader(r, state.MaxEncodedSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEntry, err)
	}
	if len(plain) > state.MaxEncodedSize {
		return nil, fmt.Errorf("%w: over %d bytes uncompressed", ErrEntry, state.MaxEncodedSize)
	}
	return state.Decode(plain)
}
