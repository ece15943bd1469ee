package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// Errors about proving that a write is in the hub's exchange log.
// [Client.VerifyInclusion] and [CheckInclusion] return the first two inside
// an [*InclusionError], which carries the evidence.
var (
	// ErrWrongEntry: the entry line the hub served with the proof is not
	// the member's entry of the action asked about at that index, or the
	// hub served none.
	ErrWrongEntry = errors.New("log entry is not the write's")
	// ErrInclusionProof: the proof does not lead from the entry to the
	// checkpoint's root hash, or is not a proof for the entry and
	// checkpoint asked about.
	ErrInclusionProof = errors.New("inclusion proof does not verify")
	// ErrNotLogged matches every [*InclusionError].
	ErrNotLogged = errors.New("write not provably in the exchange log")
	// ErrNotCheckpointed is returned, not in an [*InclusionError], when
	// the entry is past the hub's latest checkpoint: the hub signs one
	// every few seconds while its log grows, so try again shortly.
	ErrNotCheckpointed = errors.New("entry not yet covered by a checkpoint")
)

// An InclusionError says the hub could not show that an entry is in its
// exchange log as it said: a checkpoint not signed by the log key (Err is
// then the [*protocol.CheckpointError]), an entry line that is not the
// write's ([ErrWrongEntry]), or a proof that fails ([ErrInclusionProof]).
// It is a security failure, and carries the evidence: the checkpoint and
// the proof's answer exactly as received. errors.Is(err, [ErrNotLogged])
// holds, and so does errors.Is with the error underneath.
type InclusionError struct {
	// Index is the entry's index.
	Index uint64
	// Checkpoint is the signed checkpoint as received.
	Checkpoint []byte
	// Answer is the answer to GET /v1/log/proof/inclusion as received;
	// nil if the checkpoint failed first.
	Answer []byte
	Err    error
}

func (e *InclusionError) Error() string {
	return fmt.Sprintf("exchange-log entry %d: %v", e.Index, e.Err)
}

// Unwrap returns the cause.
func (e *InclusionError) Unwrap() error { return e.Err }

// Is makes every InclusionError an [ErrNotLogged].
func (e *InclusionError) Is(target error) bool { return target == ErrNotLogged }

// A LogInclusion is the proof that a member's entry is in the hub's
// exchange log: the entry, its line, the checkpoint signed by the hub's log
// key, and the inclusion proof from the line to the checkpoint's root. Keep
// it: with the log key, anyone can check it again.
type LogInclusion struct {
	Entry      *protocol.LogEntry
	Line       []byte
	Checkpoint *protocol.Checkpoint
	Proof      tlog.RecordProof
}

// VerifyInclusion proves that the exchange-log entry at index (the
// LogIndex of a [WriteResult] or [CheckResult], or the index
// [Client.ReportOutcome] returns) is the member's own entry of action,
// such as "flag-placed" or "check" (see docs/regulator.md), and that it
// is in the hub's log. It fetches the hub's latest checkpoint and verifies
// it with the log key of the hub's configuration document, fetches the
// inclusion proof with the entry's line, checks that the line names the
// member, the action, the index and an "ok" result, and checks the proof
// against the checkpoint's root ([CheckInclusion]).
//
// An entry written after the latest checkpoint gives [ErrNotCheckpointed];
// a hub that cannot prove the entry an [*InclusionError]. The log key is
// read from the hub being checked; to hold the hub to a key obtained out of
// band, fetch the answers and call [CheckInclusion] with it.
func (c *Client) VerifyInclusion(ctx context.Context, index uint64, action protocol.LogAction) (*LogInclusion, error) {
	conf, err := c.Configuration(ctx)
	if err != nil {
		return nil, err
	}
	key, err := protocol.NewLogVerifier(conf.Log.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("the hub's configuration: %w", err)
	}
	checkpoint, err := c.Log().Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	cp, err := protocol.OpenCheckpoint(checkpoint, key)
	if err != nil {
		return nil, &InclusionError{Index: index, Checkpoint: checkpoint, Err: err}
	}
	if index >= cp.Size {
		return nil, fmt.Errorf("%w: entry %d, the latest checkpoint covers %d entries", ErrNotCheckpointed, index, cp.Size)
	}
	answer, err := c.fetch(ctx, request{method: http.MethodGet, path: fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", index, cp.Size)})
	if err != nil {
		return nil, err
	}
	return CheckInclusion(key, c.cfg.MemberID, action, index, checkpoint, answer)
}

// CheckInclusion checks, without any I/O, that answer (the hub's answer to
// GET /v1/log/proof/inclusion for index and the checkpoint's size) proves
// that the entry at index is member's entry of action, with an "ok"
// result, and is in the tree of checkpoint, which must be signed by key.
// It is what [Client.VerifyInclusion] does with the answers it fetches;
// call it with a log key obtained out of band, or to check a proof kept
// earlier. Failures are [*InclusionError]s.
func CheckInclusion(key note.Verifier, member string, action protocol.LogAction, index uint64, checkpoint, answer []byte) (*LogInclusion, error) {
	fail := func(kind error, format string, args ...any) (*LogInclusion, error) {
		return nil, &InclusionError{Index: index, Checkpoint: bytes.Clone(checkpoint), Answer: bytes.Clone(answer),
			Err: fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))}
	}
	cp, err := protocol.OpenCheckpoint(checkpoint, key)
	if err != nil {
		return nil, &InclusionError{Index: index, Checkpoint: bytes.Clone(checkpoint), Answer: bytes.Clone(answer), Err: err}
	}
	var a api.ProofResponse
	if err := json.Unmarshal(answer, &a); err != nil {
		return fail(ErrInclusionProof, "the answer is not a proof: %v", err)
	}
	if a.Index == nil || *a.Index != index || a.Size != cp.Size {
		got := "no index"
		if a.Index != nil {
			got = fmt.Sprintf("index %d", *a.Index)
		}
		return fail(ErrInclusionProof, "the answer is a proof for %s in a tree of %d, want %d in the checkpoint's %d", got, a.Size, index, cp.Size)
	}
	if a.Entry == "" {
		return fail(ErrWrongEntry, "the hub served no entry line with the proof; it serves a member its own entries only")
	}
	line := []byte(a.Entry)
	e, err := protocol.ParseLogEntry(line)
	if err != nil {
		return fail(ErrWrongEntry, "%v", err)
	}
	if e.Index != index || e.Member != member || e.Action != action || e.Result != "ok" {
		return fail(ErrWrongEntry, "entry %d is %q by %q (%s), want entry %d %q by %q (ok)", e.Index, e.Action, e.Member, e.Result, index, action, member)
	}
	proof, err := protocol.ParseProofHashes(a.Proof)
	if err != nil {
		return fail(ErrInclusionProof, "%v", err)
	}
	if err := tlog.CheckRecord(proof, int64(cp.Size), cp.Root, int64(index), tlog.RecordHash(line)); err != nil {
		return fail(ErrInclusionProof, "%v (against checkpoint %s)", err, cp)
	}
	return &LogInclusion{Entry: e, Line: line, Checkpoint: cp, Proof: proof}, nil
}
