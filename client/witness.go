package client

import (
	"context"
	"net/http"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// CosignedCheckpoint fetches the hub's latest checkpoint, with the
// cosignatures its witnesses returned, and verifies it: signed by logKey,
// and cosigned by at least quorum of witnesses (keys the caller trusts,
// obtained from the witnesses, not from the hub; see
// [protocol.NewWitnessVerifier]). It returns the checkpoint and the valid
// cosignatures, in the order of witnesses. Short of the quorum the error
// is a [*protocol.QuorumError], which says who signed; a checkpoint not
// signed by the log key is a [*protocol.CheckpointError].
func (c *Client) CosignedCheckpoint(ctx context.Context, logKey note.Verifier, witnesses []note.Verifier, quorum int) (*protocol.Checkpoint, []protocol.Cosignature, error) {
	msg, err := c.Log().Checkpoint(ctx)
	if err != nil {
		return nil, nil, err
	}
	return protocol.VerifyCosigned(msg, logKey, witnesses, quorum)
}

// Witnesses returns how the hub's exchange with each of its witnesses
// stands: the latest checkpoint each cosigned, and failures since. It needs
// no credentials.
func (l *Log) Witnesses(ctx context.Context) (*api.WitnessesStatus, error) {
	out := new(api.WitnessesStatus)
	if err := l.c.call(ctx, request{method: http.MethodGet, path: "/v1/log/witnesses", anonymous: true}, out); err != nil {
		return nil, err
	}
	return out, nil
}
