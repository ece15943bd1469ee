package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// EncodingVersion is the version of the command encoding that [Encode]
// writes and [Decode] reads.
const EncodingVersion = 1

// MaxEncodedSize bounds an encoded command. The largest commands — a
// member with an inline key set, an erasure naming many entries — are far
// below it.
const MaxEncodedSize = 1 << 20

// ErrEncoding is returned, wrapped, by [Decode] for bytes that are not a
// command in this version's encoding, and by [Encode] for a command it
// cannot encode.
var ErrEncoding = errors.New("not an encoded command")

// envelope is the encoding of a command: the encoding's version, the
// command's kind, and the command as JSON.
type envelope struct {
	V       int             `json:"v"`
	Kind    Kind            `json:"kind"`
	Command json.RawMessage `json:"command"`
}

// Encode returns the encoding of c: deterministic, so that the same
// command always encodes to the same bytes.
func Encode(c Command) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("%w: nil command", ErrEncoding)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrEncoding, c.Kind(), err)
	}
	b, err := json.Marshal(envelope{V: EncodingVersion, Kind: c.Kind(), Command: body})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrEncoding, c.Kind(), err)
	}
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: %s is %d bytes encoded, over %d", ErrEncoding, c.Kind(), len(b), MaxEncodedSize)
	}
	return b, nil
}

// Decode reads a command that [Encode] wrote. It refuses another version,
// an unknown kind, a field the kind does not have, and trailing data, each
// with an error wrapping [ErrEncoding] that says which.
func Decode(b []byte) (Command, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrEncoding, len(b), MaxEncodedSize)
	}
	var env envelope
	if err := strict(b, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEncoding, err)
	}
	if env.V != EncodingVersion {
		return nil, fmt.Errorf("%w: encoding version %d, this hub reads version %d (a newer hub wrote it?)", ErrEncoding, env.V, EncodingVersion)
	}
	c := newCommand(env.Kind)
	if c == nil {
		return nil, fmt.Errorf("%w: unknown kind %q", ErrEncoding, env.Kind)
	}
	if len(env.Command) == 0 || bytes.Equal(env.Command, []byte("null")) {
		return nil, fmt.Errorf("%w: %s without its command", ErrEncoding, env.Kind)
	}
	if err := strict(env.Command, c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrEncoding, env.Kind, err)
	}
	return c, nil
}

// strict decodes one JSON value into v, refusing unknown fields and
// anything after the value.
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the command")
	}
	return nil
}
