package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestCosignedCheckpoint: a regulator's SDK fetches the checkpoint with
// its witnesses' cosignatures and holds it to a quorum of keys it trusts;
// the witnesses' status says who cosigned what.
func TestCosignedCheckpoint(t *testing.T) {
	ctx := context.Background()
	w1, w2 := hubtest.StartWitness(t, "w1.example"), hubtest.StartWitness(t, "w2.example")
	hub := hubtest.Start(t, hubtest.Options{Configure: func(cfg *server.Config) {
		cfg.Witnesses = []server.Witness{w1.Config(), w2.Config()}
		cfg.WitnessRetry, cfg.WitnessRetryMax = 5*time.Millisecond, 50*time.Millisecond
	}})
	w1.AddLog(t, hub.Keys.LogVerifier)
	reg := newClient(t, hub, hub.AddMember(t, "finansinspektionen", api.RoleRegulator))
	logKey, err := note.NewVerifier(hub.Keys.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	var keys []note.Verifier
	for _, w := range []*hubtest.Witness{w1, w2} {
		v, err := protocol.NewWitnessVerifier(w.Key)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, v)
	}
	var st *api.WitnessesStatus
	for i := 0; ; i++ {
		if st, err = reg.Log().Witnesses(ctx); err != nil {
			t.Fatal(err)
		}
		if c := st.Witnesses[0].CosignedSize; c != nil && *c == st.CheckpointSize {
			break
		}
		if i == 500 {
			t.Fatalf("gave up waiting for w1 to cosign: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st.Witnesses[1].CosignedSize != nil || st.Witnesses[1].Failures == 0 {
		t.Errorf("got w2's status %+v, want it failing (it does not know the log)", st.Witnesses[1])
	}

	c, signed, err := reg.CosignedCheckpoint(ctx, logKey, keys, 1)
	if err != nil || c.Size != st.CheckpointSize || len(signed) != 1 || signed[0].Witness != "w1.example" {
		t.Fatalf("quorum 1: got %v %+v %v, want the checkpoint cosigned by w1", c, signed, err)
	}
	_, _, err = reg.CosignedCheckpoint(ctx, logKey, keys, 2)
	var qe *protocol.QuorumError
	if !errors.As(err, &qe) || len(qe.Missing) != 1 || qe.Missing[0] != "w2.example" {
		t.Fatalf("quorum 2: got %v, want a QuorumError missing w2", err)
	}
}
