package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
)

// BundleFormat is the format line of a bundle.
const BundleFormat = "sparr-log-bundle/1"

// MaxBundleSize is the largest bundle [ParseBundle] reads: 10 000 entries
// with their proofs fit many times over.
const MaxBundleSize = 256 << 20

// Errors of bundles. [ParseBundle] returns ErrBundleMalformed; [Bundle.Verify]
// returns a [*BundleError] holding ErrBundleEntry, a [*protocol.CheckpointError]
// when the checkpoint is not signed by the log key, or a [*QuorumError].
var (
	// ErrBundleMalformed: the bytes are not a bundle.
	ErrBundleMalformed = errors.New("malformed log bundle")
	// ErrBundleEntry: an entry of the bundle is not in the log of its
	// checkpoint, is not the entry at its index, is out of order, or does
	// not match the bundle's filter.
	ErrBundleEntry = errors.New("log bundle entry does not verify")
)

// A Bundle is a self-verifying extract of the exchange log: a signed
// checkpoint (with any witness cosignatures), and the entries a filter
// selected, each with its inclusion proof in the checkpoint's tree.
// docs/regulator.md describes it.
type Bundle struct {
	Format string `json:"format"`
	// Log is the log's origin (the log key's name).
	Log string `json:"log"`
	// Hub is where it was read, and ExportedAt when: for people; nothing
	// is verified against them.
	Hub        string    `json:"hub,omitempty"`
	ExportedAt time.Time `json:"exported_at"`
	Filter     Filter    `json:"filter"`
	// Checkpoint is the signed checkpoint note, byte for byte.
	Checkpoint string `json:"checkpoint"`
	// Entries are in index order, each below the checkpoint's size.
	Entries []BundleEntry `json:"entries"`
	// Truncated says the filter selected more entries than were exported.
	Truncated bool `json:"truncated,omitempty"`
}

// A Filter selects log entries: by member, action and time (From
// inclusive, To exclusive); zero fields select all.
type Filter struct {
	Member string             `json:"member,omitempty"`
	Action protocol.LogAction `json:"action,omitempty"`
	From   time.Time          `json:"from,omitzero"`
	To     time.Time          `json:"to,omitzero"`
}

// Match reports whether e is one of the entries f selects.
func (f Filter) Match(e *protocol.LogEntry) bool {
	return (f.Member == "" || e.Member == f.Member) && (f.Action == "" || e.Action == f.Action) &&
		(f.From.IsZero() || !e.Time.Before(f.From)) && (f.To.IsZero() || e.Time.Before(f.To))
}

// A BundleEntry is an entry's line, as hashed into the log (with its
// newline), and its inclusion proof as base64 hashes.
type BundleEntry struct {
	Index uint64   `json:"index"`
	Line  string   `json:"line"`
	Proof []string `json:"proof"`
}

// A BundleError says which entry of a bundle failed, and why.
type BundleError struct {
	Index uint64
	Line  string
	Err   error
}

func (e *BundleError) Error() string { return fmt.Sprintf("entry %d: %v", e.Index, e.Err) }

// Unwrap returns the cause.
func (e *BundleError) Unwrap() error { return e.Err }

// ParseBundle reads a bundle, strictly: a JSON document of the format
// [BundleFormat], with no unknown fields, at most [MaxBundleSize] bytes.
// It verifies nothing; [Bundle.Verify] does.
func ParseBundle(b []byte) (*Bundle, error) {
	if len(b) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBundleMalformed, len(b), MaxBundleSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var out Bundle
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundleMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the document", ErrBundleMalformed)
	}
	if out.Format != BundleFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrBundleMalformed, out.Format, BundleFormat)
	}
	if out.Checkpoint == "" {
		return nil, fmt.Errorf("%w: no checkpoint", ErrBundleMalformed)
	}
	return &out, nil
}

// A BundleReport is what [Bundle.Verify] established.
type BundleReport struct {
	Checkpoint *Checkpoint
	Entries    []*protocol.LogEntry
}

// Verify checks the bundle without any I/O: the checkpoint is signed by
// logKey and cosigned by at least quorum of witnesses; every entry is the
// entry at its index (its line parses and names that index), in index
// order, selected by the bundle's filter, and proved in the checkpoint's
// tree by its inclusion proof. It proves the entries are in the log; not
// that the filter selected no others.
func (b *Bundle) Verify(logKey note.Verifier, witnesses []note.Verifier, quorum int) (*BundleReport, error) {
	cp, err := OpenCheckpoint([]byte(b.Checkpoint), logKey, witnesses, quorum)
	if err != nil {
		return nil, err
	}
	if b.Log != cp.Origin {
		return nil, fmt.Errorf("%w: the bundle names log %q, its checkpoint is of %q", ErrBundleMalformed, b.Log, cp.Origin)
	}
	entries, err := b.checkEntries(cp)
	if err != nil {
		return nil, err
	}
	return &BundleReport{Checkpoint: cp, Entries: entries}, nil
}

// checkEntries checks the bundle's entries against a verified checkpoint,
// as [Bundle.Verify] says, and returns them parsed.
func (b *Bundle) checkEntries(cp *Checkpoint) ([]*protocol.LogEntry, error) {
	var out []*protocol.LogEntry
	for i, be := range b.Entries {
		fail := func(format string, args ...any) ([]*protocol.LogEntry, error) {
			return nil, &BundleError{Index: be.Index, Line: be.Line, Err: fmt.Errorf("%w: %s", ErrBundleEntry, fmt.Sprintf(format, args...))}
		}
		if i > 0 && be.Index <= b.Entries[i-1].Index {
			return fail("after entry %d: the entries are not in index order", b.Entries[i-1].Index)
		}
		if be.Index >= cp.Size {
			return fail("not in the checkpoint's tree of %d entries", cp.Size)
		}
		e, err := protocol.ParseLogEntry([]byte(be.Line))
		if err != nil {
			return fail("%v", err)
		}
		if e.Index != be.Index {
			return fail("the line is entry %d's", e.Index)
		}
		if !b.Filter.Match(e) {
			return fail("the bundle's filter does not select it")
		}
		proof, err := parseProof(be.Proof)
		if err != nil {
			return fail("%v", err)
		}
		if err := tlog.CheckRecord(proof, int64(cp.Size), cp.Root, int64(be.Index), tlog.RecordHash([]byte(be.Line))); err != nil {
			return fail("inclusion proof: %v (against the checkpoint of size %d)", err, cp.Size)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseProof reads base64 hashes, at most 64 of them (a tree of 2^64).
func parseProof(hashes []string) ([]tlog.Hash, error) {
	if len(hashes) > 64 {
		return nil, fmt.Errorf("a proof of %d hashes, at most 64", len(hashes))
	}
	return protocol.ParseProofHashes(hashes)
}
