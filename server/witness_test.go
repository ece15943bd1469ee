package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// witnessedHub starts a hub that asks ws to cosign, retrying quickly.
func witnessedHub(t *testing.T, ws ...*hubtest.Witness) *hubtest.Hub {
	t.Helper()
	return hubtest.Start(t, hubtest.Options{Configure: func(cfg *server.Config) {
		for _, w := range ws {
			cfg.Witnesses = append(cfg.Witnesses, w.Config())
		}
		cfg.WitnessRetry, cfg.WitnessRetryMax = 5*time.Millisecond, 50*time.Millisecond
	}})
}

// cosignedBy fetches the latest checkpoint without credentials and
// returns it with the valid cosignatures of ws on it.
func cosignedBy(t *testing.T, hub *hubtest.Hub, ws ...*hubtest.Witness) (*protocol.Checkpoint, []protocol.Cosignature) {
	t.Helper()
	resp := hub.Anonymous(t, http.MethodGet, "/v1/log/checkpoint", "", nil)
	mustStatus(t, resp, http.StatusOK)
	logKey, err := protocol.NewLogVerifier(hub.Configuration().Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var vs []note.Verifier
	for _, w := range ws {
		v, err := protocol.NewWitnessVerifier(w.Key)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	c, signed, err := protocol.VerifyCosigned(resp.Body, logKey, vs, 0)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", resp.Body, err)
	}
	return c, signed
}

func witnessStatus(t *testing.T, hub *hubtest.Hub) api.WitnessesStatus {
	t.Helper()
	var st api.WitnessesStatus
	resp := hub.Anonymous(t, http.MethodGet, "/v1/log/witnesses", "", nil)
	mustStatus(t, resp, http.StatusOK)
	resp.JSON(t, &st)
	return st
}

// TestWitnessesCosignCheckpoints: the hub sends each new checkpoint, with
// its consistency proof, to every witness; their cosignatures are kept and
// served with the checkpoint, to anyone, and meet a quorum of two. A
// witness that does not know the log yet refuses, and is asked again
// until it cosigns.
func TestWitnessesCosignCheckpoints(t *testing.T) {
	w1, w2 := hubtest.StartWitness(t, "w1.example"), hubtest.StartWitness(t, "w2.example")
	hub := witnessedHub(t, w1, w2)
	logKey := hub.Configuration().Log.PublicKey
	if got := hub.Configuration().Log.Witnesses; len(got) != 2 || got[0].PublicKey != w1.Key || got[0].Name != "w1.example" {
		t.Fatalf("got witnesses %+v in the configuration, want w1 and w2", got)
	}
	// w1 does not know the log yet: it refuses, and the hub retries.
	w2.AddLog(t, logKey)
	waitFor(t, "w1 refused", func() bool { return witnessStatus(t, hub).Witnesses[0].Failures > 0 })
	st := witnessStatus(t, hub)
	if !strings.Contains(st.Witnesses[0].LastError, "403") || st.Witnesses[0].NextAttempt == nil {
		t.Errorf("got w1's status %+v, want its 403 and a next attempt", st.Witnesses[0])
	}
	if v := metricValue(t, hub, `sparr_witness_requests_total{outcome="refused",witness="w1.example"}`); v < 1 {
		t.Errorf("got %v refusals of w1 counted, want at least 1", v)
	}
	w1.AddLog(t, logKey)

	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "witnessed@example.se")
	for round := range 3 {
		for range 5 {
			check(t, bank, "payment", toks...)
		}
		if _, err := hub.PublishCheckpoint(); err != nil {
			t.Fatal(err)
		}
		size, _ := hub.Store.LogSize()
		waitFor(t, fmt.Sprintf("round %d: both witnesses at %d", round, size), func() bool {
			return w1.Size() == int64(size) && w2.Size() == int64(size)
		})
		waitFor(t, "both cosignatures served and in the status", func() bool {
			_, signed := cosignedBy(t, hub, w1, w2)
			for _, w := range witnessStatus(t, hub).Witnesses {
				if w.CosignedSize == nil || *w.CosignedSize != size {
					return false
				}
			}
			return len(signed) == 2
		})
		c, signed := cosignedBy(t, hub, w1, w2)
		if c.Size != size || signed[0].Witness != "w1.example" || signed[1].Witness != "w2.example" {
			t.Fatalf("got %v cosigned by %+v, want size %d by w1 and w2", c, signed, size)
		}
	}
	st = witnessStatus(t, hub)
	for _, w := range st.Witnesses {
		if w.CosignedSize == nil || *w.CosignedSize != st.CheckpointSize || w.Failures != 0 || w.LastError != "" {
			t.Errorf("got status %+v, want cosigned at %d without failures", w, st.CheckpointSize)
		}
	}
	if v := metricValue(t, hub, `sparr_witness_cosigned_entries{witness="w2.example"}`); v != float64(st.CheckpointSize) {
		t.Errorf("got sparr_witness_cosigned_entries %v, want %d", v, st.CheckpointSize)
	}
	if v := metricValue(t, hub, `sparr_witness_failures{witness="w1.example"}`); v != 0 {
		t.Errorf("got sparr_witness_failures %v after w1 cosigned, want 0", v)
	}

	// An older checkpoint keeps the cosignatures it got.
	resp := hub.Anonymous(t, http.MethodGet, fmt.Sprintf("/v1/log/checkpoint?size=%d", st.CheckpointSize), "", nil)
	mustStatus(t, resp, http.StatusOK)
	if n := strings.Count(string(resp.Body), "\n— "); n != 3 {
		t.Errorf("got %d signature lines on checkpoint %d, want the log's and two cosignatures:\n%s", n, st.CheckpointSize, resp.Body)
	}

	// After a restart the hub learns from each witness (409) the size it
	// holds and goes on from there.
	hub.Restart(t)
	for range 3 {
		check(t, bank, "payment", toks...)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	size, _ := hub.Store.LogSize()
	waitFor(t, "cosigned after the restart", func() bool {
		c, signed := cosignedBy(t, hub, w1, w2)
		return c.Size == size && len(signed) == 2
	})
	if v := metricValue(t, hub, `sparr_witness_requests_total{outcome="conflict",witness="w1.example"}`); v < 1 {
		t.Errorf("got %v conflicts counted after the restart, want the 409 that told the hub w1's size", v)
	}
}

// TestWitnessDownNeverBlocksWrites: with its only witness down, the hub
// takes writes and publishes checkpoints as ever; status and metrics show
// the failures; once the witness is back, the retry brings it up to date.
func TestWitnessDownNeverBlocksWrites(t *testing.T) {
	w := hubtest.StartWitness(t, "down.example")
	w.SetDown(true)
	hub := witnessedHub(t, w)
	w.AddLog(t, hub.Configuration().Log.PublicKey)
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "down@example.se")
	for range 5 {
		check(t, bank, "payment", toks...)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two failures", func() bool { return witnessStatus(t, hub).Witnesses[0].Failures >= 2 })
	st := witnessStatus(t, hub).Witnesses[0]
	if st.CosignedSize != nil || !strings.Contains(st.LastError, "503") {
		t.Errorf("got status %+v, want nothing cosigned and the 503", st)
	}
	if v := metricValue(t, hub, `sparr_witness_failures{witness="down.example"}`); v < 2 {
		t.Errorf("got sparr_witness_failures %v, want at least 2", v)
	}
	if c, signed := cosignedBy(t, hub, w); len(signed) != 0 || c.Size == 0 {
		t.Errorf("got checkpoint %v with %d cosignatures, want it signed by the log alone", c, len(signed))
	}

	w.SetDown(false)
	size, _ := hub.Store.LogSize()
	waitFor(t, "cosigned once back", func() bool {
		c, signed := cosignedBy(t, hub, w)
		return c.Size == size && len(signed) == 1
	})
	waitFor(t, "failures reset", func() bool { return witnessStatus(t, hub).Witnesses[0].Failures == 0 })
}

// TestWitnessConfigRefused: New refuses a witness it could not use.
func TestWitnessConfigRefused(t *testing.T) {
	w := hubtest.StartWitness(t, "w.example")
	hub := hubtest.Start(t, hubtest.Options{})
	for name, ws := range map[string][]server.Witness{
		"bad key":   {{URL: w.URL, Key: "w.example+00000000+AA=="}},
		"bad URL":   {{URL: "ftp://w.example", Key: w.Key}},
		"twice":     {w.Config(), w.Config()},
		"log's key": {{URL: w.URL, Key: "no-key"}},
	} {
		t.Run(name, func(t *testing.T) {
			// New refuses them before it touches the (running hub's) store.
			_, err := server.New(server.Config{Issuer: "https://hub.example", Store: hub.Store, Keys: hub.Keys, Witnesses: ws})
			if err == nil {
				t.Fatalf("got no error for %+v", ws)
			}
		})
	}
}
