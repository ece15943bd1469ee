package protocol

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Errors about checkpoints.
var (
	// ErrCheckpointMalformed is returned by [ParseCheckpoint] and
	// [OpenCheckpoint] for text that is not a C2SP tlog checkpoint.
	ErrCheckpointMalformed = errors.New("malformed checkpoint")
	// ErrCheckpointSignature is returned by [OpenCheckpoint] when the note
	// carries no valid signature by the pinned log key, or is for another
	// log.
	ErrCheckpointSignature = errors.New("checkpoint not signed by the log key")
)

// A CheckpointError is a signed checkpoint that did not open: not signed
// by the pinned log key, of another log, or not a checkpoint at all. It
// carries the note exactly as served, the evidence a regulator keeps.
// errors.Is(err, Err) holds: [ErrCheckpointSignature] or
// [ErrCheckpointMalformed].
type CheckpointError struct {
	// Note is the text as served, byte for byte.
	Note []byte
	// Key names the log key it was checked against.
	Key    string
	Err    error
	Detail string
}

func (e *CheckpointError) Error() string { return fmt.Sprintf("%v: %s", e.Err, e.Detail) }

func (e *CheckpointError) Unwrap() error { return e.Err }

// MaxCheckpointSize bounds a signed checkpoint.
const MaxCheckpointSize = 16 << 10

// A Checkpoint is a signed statement of the exchange log's size and root
// hash, in the C2SP tlog-checkpoint format (c2sp.org/tlog-checkpoint):
//
//	<origin>
//	<tree size, decimal>
//	<root hash, standard base64>
//
// signed as a note (golang.org/x/mod/sumdb/note) with the hub's log key,
// which is not the key that signs records. The root is the RFC 6962 Merkle
// tree hash of the first Size entries, each entry's leaf being its line.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   tlog.Hash
	// Note is the signed note the checkpoint was read from, if any: the
	// evidence to keep.
	Note []byte
}

// Text returns the checkpoint body that is signed.
func (c *Checkpoint) Text() []byte {
	return []byte(c.Origin + "\n" + strconv.FormatUint(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n")
}

// String shows the checkpoint in one line, for messages.
func (c *Checkpoint) String() string {
	return fmt.Sprintf("%s size %d root %s", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
}

// ParseCheckpoint parses a checkpoint body. Extension lines after the root
// are allowed, as the format allows, and ignored.
func ParseCheckpoint(text []byte) (*Checkpoint, error) {
	fail := func(format string, args ...any) (*Checkpoint, error) {
		return nil, fmt.Errorf("%w: %s", ErrCheckpointMalformed, fmt.Sprintf(format, args...))
	}
	if len(text) > MaxCheckpointSize {
		return fail("%d bytes, at most %d", len(text), MaxCheckpointSize)
	}
	if !bytes.HasSuffix(text, []byte("\n")) {
		return fail("does not end with a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return fail("%d lines, want at least origin, size and root hash", len(lines))
	}
	c := &Checkpoint{Origin: lines[0]}
	if c.Origin == "" || strings.ContainsAny(c.Origin, " \t+") {
		return fail("origin line %q", c.Origin)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || (lines[1] != "0" && lines[1][0] == '0') {
		return fail("size line %q is not a decimal number", lines[1])
	}
	c.Size = size
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return fail("root hash line %q is not %d bytes of standard base64", lines[2], tlog.HashSize)
	}
	copy(c.Root[:], root)
	for _, ext := range lines[3:] {
		if ext == "" {
			return fail("empty extension line")
		}
	}
	return c, nil
}

// SignCheckpoint signs c with the log's note signer, whose name must be
// the checkpoint's origin.
func SignCheckpoint(c *Checkpoint, signer note.Signer) ([]byte, error) {
	if signer.Name() != c.Origin {
		return nil, fmt.Errorf("sign checkpoint: signer is for %q, checkpoint for %q", signer.Name(), c.Origin)
	}
	return note.Sign(&note.Note{Text: string(c.Text())}, signer)
}

// OpenCheckpoint verifies a signed checkpoint against the pinned log key
// and parses it. The checkpoint's origin must be the key's name. Every
// failure is a [*CheckpointError], which keeps msg as evidence.
func OpenCheckpoint(msg []byte, key note.Verifier) (*Checkpoint, error) {
	fail := func(kind error, format string, args ...any) (*Checkpoint, error) {
		return nil, &CheckpointError{Note: bytes.Clone(msg), Key: key.Name(), Err: kind, Detail: fmt.Sprintf(format, args...)}
	}
	if len(msg) > MaxCheckpointSize {
		return fail(ErrCheckpointMalformed, "%d bytes, at most %d", len(msg), MaxCheckpointSize)
	}
	n, err := note.Open(msg, note.VerifierList(key))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return fail(ErrCheckpointSignature, "no valid signature by %s (%v)", key.Name(), err)
		}
		return fail(ErrCheckpointMalformed, "%v", err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return fail(ErrCheckpointMalformed, "%v", strings.TrimPrefix(err.Error(), ErrCheckpointMalformed.Error()+": "))
	}
	if c.Origin != key.Name() {
		return fail(ErrCheckpointSignature, "checkpoint of log %q, key of %q", c.Origin, key.Name())
	}
	c.Note = bytes.Clone(msg)
	return c, nil
}

// NewLogVerifier parses a log's public key as published in the hub's
// configuration ("<origin>+<hash>+<key>").
func NewLogVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("log key %q: %w (want <origin>+<hash>+<key>, as the hub's /.well-known/sparr-configuration publishes it)", vkey, err)
	}
	return v, nil
}

// A Frontier is the right edge of a Merkle tree: the roots of the perfect
// subtrees it is made of, largest first. It is all a verifier needs to keep
// to extend the tree with new entries and compute its root (RFC 6962), so
// a regulator's state stays small however long the log grows.
type Frontier struct {
	Size   uint64      `json:"size"`
	Hashes []tlog.Hash `json:"hashes"`
}

// Append adds one entry (its line) to the tree.
func (f *Frontier) Append(entry []byte) { f.AppendHash(tlog.RecordHash(entry)) }

// AppendHash adds one leaf hash to the tree.
func (f *Frontier) AppendHash(h tlog.Hash) {
	f.Hashes = append(f.Hashes, h)
	// Merge equal-height subtrees: one merge per trailing 1 bit of Size.
	for n := f.Size; n&1 == 1; n >>= 1 {
		last := len(f.Hashes) - 1
		f.Hashes = append(f.Hashes[:last-1], tlog.NodeHash(f.Hashes[last-1], f.Hashes[last]))
	}
	f.Size++
}

// Root returns the tree hash: the subtrees folded from the right. The
// empty tree's hash is SHA-256 of nothing (RFC 6962, section 2.1).
func (f *Frontier) Root() tlog.Hash {
	if len(f.Hashes) == 0 {
		return emptyRoot
	}
	h := f.Hashes[len(f.Hashes)-1]
	for i := len(f.Hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f.Hashes[i], h)
	}
	return h
}

// Clone returns an independent copy.
func (f *Frontier) Clone() *Frontier {
	return &Frontier{Size: f.Size, Hashes: append([]tlog.Hash(nil), f.Hashes...)}
}

// emptyRoot is SHA-256("").
var emptyRoot = tlog.Hash{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}

// EmptyRoot returns the tree hash of the empty log.
func EmptyRoot() tlog.Hash { return emptyRoot }
