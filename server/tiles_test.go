package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestStockTileClientFollowsTheLog follows the exchange log as any
// c2sp.org/tlog-tiles client would, with filippo.io/torchwood's
// TileFetcher on the monitoring prefix /v1/log/ and no credentials: it
// reads and verifies the checkpoint, checks each newer checkpoint's
// consistency with the one it holds from the hash tiles alone, and proves
// an entry's inclusion from them. The entry bundles stay the
// regulator's.
func TestStockTileClientFollowsTheLog(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "follow@example.se")

	ctx := context.Background()
	fetcher, err := torchwood.NewTileFetcher(hub.Configuration().Log.Monitoring)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(hub.Configuration().Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	latest := func() torchwood.Checkpoint {
		t.Helper()
		if _, err := hub.PublishCheckpoint(); err != nil {
			t.Fatal(err)
		}
		b, err := fetcher.ReadEndpoint(ctx, "checkpoint")
		if err != nil {
			t.Fatalf("checkpoint without credentials: %v", err)
		}
		n, err := note.Open(b, note.VerifierList(verifier))
		if err != nil {
			t.Fatalf("checkpoint %q: %v", b, err)
		}
		c, err := torchwood.ParseCheckpoint(n.Text)
		if err != nil {
			t.Fatal(err)
		}
		if c.Origin != verifier.Name() {
			t.Fatalf("got origin %q, want %q", c.Origin, verifier.Name())
		}
		return c
	}

	held := latest()
	for _, grow := range []int{3, 260, 40} {
		for range grow {
			check(t, bank, "payment", toks...)
		}
		next := latest()
		if next.N <= held.N {
			t.Fatalf("got a checkpoint of %d entries after %d more, want more than %d", next.N, grow, held.N)
		}
		hr := torchwood.TileHashReaderWithContext(ctx, next.Tree, fetcher)
		if root, err := tlog.TreeHash(next.N, hr); err != nil || root != next.Hash {
			t.Fatalf("got root %v (%v) from the tiles, want the checkpoint's %v", root, err, next.Hash)
		}
		if held.N > 0 {
			proof, err := tlog.ProveTree(next.N, held.N, hr)
			if err != nil {
				t.Fatalf("consistency %d → %d from the tiles: %v", held.N, next.N, err)
			}
			if err := tlog.CheckTree(proof, next.N, next.Hash, held.N, held.Hash); err != nil {
				t.Fatalf("consistency %d → %d: %v", held.N, next.N, err)
			}
		}
		held = next
	}

	// An entry's inclusion, proved from the public tiles alone; the line
	// itself comes from the log's reader.
	lines, err := hub.Store.LogEntries(0, uint64(held.N))
	if err != nil {
		t.Fatal(err)
	}
	hr := torchwood.TileHashReaderWithContext(ctx, held.Tree, fetcher)
	for _, i := range []int64{0, 255, 256, held.N - 1} {
		proof, err := tlog.ProveRecord(held.N, i, hr)
		if err != nil {
			t.Fatalf("inclusion of %d: %v", i, err)
		}
		if err := tlog.CheckRecord(proof, held.N, held.Hash, i, tlog.RecordHash(lines[i])); err != nil {
			t.Errorf("entry %d: %v", i, err)
		}
	}

	// Entry bundles are not public: the stock client's entries fail.
	tc, err := torchwood.NewClient(fetcher)
	if err != nil {
		t.Fatal(err)
	}
	for range tc.Entries(ctx, held.Tree, 0) {
		t.Fatal("got an entry without credentials, want none")
	}
	if err := tc.Err(); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("got %v reading entries without credentials, want status 401", err)
	}

	// Hash tiles are cacheable by anyone; bundles only privately.
	resp := hub.Anonymous(t, http.MethodGet, "/v1/log/tile/0/000", "", nil)
	mustStatus(t, resp, http.StatusOK)
	if got := resp.Header.Get("Cache-Control"); !strings.HasPrefix(got, "public,") {
		t.Errorf("full tile: got Cache-Control %q, want public and long-lived", got)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("tile: got Content-Type %q, want application/octet-stream", got)
	}
	resp = hub.Anonymous(t, http.MethodGet, "/v1/log/checkpoint", "", nil)
	mustStatus(t, resp, http.StatusOK)
	if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("checkpoint: got Content-Type %q, want text/plain; charset=utf-8", got)
	}
}

// TestTilePathsAreCanonical: a tile is served only at its one path in
// c2sp.org/tlog-tiles.
func TestTilePathsAreCanonical(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	for path, want := range map[string]int{
		"/v1/log/tile/0/000.p/1":  http.StatusOK,
		"/v1/log/tile/00/000.p/1": http.StatusBadRequest,
		"/v1/log/tile/+0/000.p/1": http.StatusBadRequest,
		"/v1/log/tile/0/0.p/1":    http.StatusBadRequest,
		"/v1/log/tile/0/000.p/01": http.StatusBadRequest,
		"/v1/log/tile/0/000.p/+1": http.StatusBadRequest,
		"/v1/log/tile/0/001/000":  http.StatusBadRequest,
		"/v1/log/tile/0/x000/000": http.StatusBadRequest,
		"/v1/log/tile/0/000.p/0":  http.StatusBadRequest,
	} {
		resp := hub.Anonymous(t, http.MethodGet, path, "", nil)
		if resp.Status != want {
			t.Errorf("%s: got %d, want %d: %s", path, resp.Status, want, resp.Body)
		}
	}
}
