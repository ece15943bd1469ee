package client

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A Log reads the hub's exchange log exactly as the hub serves it: signed
// checkpoints, entry lines and Merkle proofs. It verifies nothing itself:
// it is the [protocol.LogFetcher] of a [protocol.LogAuditor], which checks
// what it fetches against a log key obtained out of band, as sparr log
// verify does. [Client.Checkpoint] and [Client.VerifyInclusion] fetch and
// verify with the log key the hub publishes. Every member may read
// checkpoints and proofs; entries need the regulator role.
//
// Its requests are reads, retried as [Retry] says.
type Log struct{ c *Client }

var _ protocol.LogFetcher = (*Log)(nil)

// Log returns the client's reader of the hub's exchange log.
func (c *Client) Log() *Log { return &Log{c: c} }

// Checkpoint returns the hub's latest checkpoint: the signed note as
// served.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	return l.c.fetch(ctx, request{method: http.MethodGet, path: "/v1/log/checkpoint", accept: "text/plain"})
}

// CheckpointAt returns the checkpoint the hub published for a tree of
// size entries, as served; [ErrNotFound] if it published none at that
// size.
func (l *Log) CheckpointAt(ctx context.Context, size uint64) ([]byte, error) {
	return l.c.fetch(ctx, request{method: http.MethodGet, path: "/v1/log/checkpoint?size=" + strconv.FormatUint(size, 10), accept: "text/plain"})
}

// Entries returns the entry lines [start, end), each with its newline, as
// served: at most [api.MaxLogPage] of them, and fewer at the end of the
// log. A last line without its newline is returned as it is, for the
// caller's parser to refuse.
func (l *Log) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	b, err := l.c.fetch(ctx, request{method: http.MethodGet, path: fmt.Sprintf("/v1/log/entries?start=%d&end=%d", start, end), accept: "text/plain"})
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lines = append(lines, b)
			break
		}
		lines = append(lines, b[:i+1])
		b = b[i+1:]
	}
	return lines, nil
}

// InclusionProof returns the hub's proof that the entry at index is in the
// tree of size entries, with the entry's line when the member may read it
// (its own entry, or any for a regulator). [CheckInclusion] checks such an
// answer.
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) (*api.ProofResponse, error) {
	out := new(api.ProofResponse)
	if err := l.c.call(ctx, request{method: http.MethodGet, path: fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", index, size)}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// ConsistencyProof returns the hub's proof that the tree of old entries is
// a prefix of the tree of new entries, for tlog.CheckTree against the two
// checkpoints.
func (l *Log) ConsistencyProof(ctx context.Context, old, new uint64) (tlog.TreeProof, error) {
	const op = "GET /v1/log/proof/consistency"
	answer, err := l.c.fetch(ctx, request{method: http.MethodGet, path: fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", old, new)})
	if err != nil {
		return nil, err
	}
	var a api.ProofResponse
	if err := decodeAnswer(op, answer, &a); err != nil {
		return nil, err
	}
	proof, err := protocol.ParseProofHashes(a.Proof)
	if err != nil {
		return nil, &AnswerError{Op: op, Answer: answer, Err: err}
	}
	return proof, nil
}

// Checkpoint fetches the hub's latest checkpoint and verifies it with the
// log key of the hub's configuration document. A checkpoint that does not
// verify is a [*protocol.CheckpointError], which carries it. The key is
// the one the hub publishes; to hold the hub to a key obtained out of
// band, open [Log.Checkpoint]'s note with it ([protocol.OpenCheckpoint]).
func (c *Client) Checkpoint(ctx context.Context) (*protocol.Checkpoint, error) {
	conf, err := c.Configuration(ctx)
	if err != nil {
		return nil, err
	}
	key, err := protocol.NewLogVerifier(conf.Log.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("the hub's configuration: %w", err)
	}
	note, err := c.Log().Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	return protocol.OpenCheckpoint(note, key)
}

// Tile returns a tile of the log's tree as served at path, which is a
// C2SP tlog-tiles path such as "tile/0/x001/234.p/5" or
// "tile/entries/000": the hashes, or the entry bundle (which needs the
// regulator role). It verifies nothing: a [tlog.TileHashReader] checks hash
// tiles against a checkpoint's tree.
func (l *Log) Tile(ctx context.Context, path string) ([]byte, error) {
	return l.c.fetch(ctx, request{method: http.MethodGet, path: "/v1/log/" + path, accept: "application/octet-stream"})
}
