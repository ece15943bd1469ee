package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestVerifyInclusion: a member proves, against a real hub, that its
// writes are in the hub's signed log, and is refused a proof of another
// member's entry or of an action it did not take.
func TestVerifyInclusion(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	bank := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck))
	other := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck))
	toks, err := bank.Tokenize(ctx, protocol.TypePersonalNumber, pnr)
	if err != nil {
		t.Fatal(err)
	}
	placed := place(t, bank, hub.Now(), toks[0])
	checked, err := other.Check(ctx, api.PurposeCreditApplication, toks[0])
	if err != nil {
		t.Fatal(err)
	}

	// Not yet in a checkpoint: try again later.
	if _, err := bank.VerifyInclusion(ctx, placed.LogIndex, "flag-placed"); !errors.Is(err, client.ErrNotCheckpointed) {
		t.Fatalf("before a checkpoint covers it: got %v, want ErrNotCheckpointed", err)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	inc, err := bank.VerifyInclusion(ctx, placed.LogIndex, "flag-placed")
	if err != nil {
		t.Fatalf("got %v, want the placement proved", err)
	}
	if inc.Entry.Index != placed.LogIndex || inc.Entry.Member != "bank-a" || inc.Entry.Action != "flag-placed" || inc.Checkpoint.Size <= placed.LogIndex {
		t.Errorf("got entry %+v in checkpoint %s, want bank-a's flag-placed at %d", inc.Entry, inc.Checkpoint, placed.LogIndex)
	}
	if _, err := other.VerifyInclusion(ctx, checked.LogIndex, "check"); err != nil {
		t.Errorf("bank-b's check: got %v, want it proved", err)
	}

	for _, tc := range []struct {
		name   string
		c      *client.Client
		index  uint64
		action protocol.LogAction
	}{
		{"another action than logged", bank, placed.LogIndex, "flag-lifted"},
		{"another member's entry", bank, checked.LogIndex, "check"},
		{"an index the write did not get", bank, placed.LogIndex + 1, "flag-placed"},
	} {
		_, err := tc.c.VerifyInclusion(ctx, tc.index, tc.action)
		var ie *client.InclusionError
		if !errors.Is(err, client.ErrWrongEntry) || !errors.Is(err, client.ErrNotLogged) || !errors.As(err, &ie) || ie.Checkpoint == nil || ie.Answer == nil {
			t.Errorf("%s: got %v, want ErrWrongEntry with the checkpoint and answer as evidence", tc.name, err)
		}
	}
}

// TestCheckInclusionRefusesTampering: answers changed on the way, checked
// without HTTP, each give their own error and keep the evidence.
func TestCheckInclusionRefusesTampering(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	m := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	bank := newClient(t, hub, m)
	toks, err := bank.Tokenize(ctx, protocol.TypePersonalNumber, pnr)
	if err != nil {
		t.Fatal(err)
	}
	placed := place(t, bank, hub.Now(), toks[0])
	if _, err := bank.Check(ctx, api.PurposePayment, toks[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	// Genuine answers, fetched once.
	checkpoint := m.Do(t, http.MethodGet, "/v1/log/checkpoint", "", nil).Body
	key, err := protocol.NewLogVerifier(hub.Configuration().Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := protocol.OpenCheckpoint(checkpoint, key)
	if err != nil {
		t.Fatal(err)
	}
	idx := placed.LogIndex
	answer := m.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", idx, cp.Size), "", nil).Body
	if _, err := client.CheckInclusion(key, "bank-a", "flag-placed", idx, checkpoint, answer); err != nil {
		t.Fatalf("genuine answers: got %v, want them proved", err)
	}

	edit := func(f func(a map[string]any)) []byte {
		var a map[string]any
		if err := json.Unmarshal(answer, &a); err != nil {
			t.Fatal(err)
		}
		f(a)
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	flip := func(s string) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[0] ^= 1
		return base64.StdEncoding.EncodeToString(b)
	}
	// The same checkpoint text, signed by a key of the same name that is
	// not the hub's.
	skey, _, err := note.GenerateKey(rand.Reader, hub.Keys.LogOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := protocol.SignCheckpoint(cp, signer)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		checkpoint []byte
		answer     []byte
		want       error
		msg        string // in the error's text, when set
	}{
		{"a proof hash changed", checkpoint, edit(func(a map[string]any) {
			p := a["proof"].([]any)
			p[0] = flip(p[0].(string))
		}), client.ErrInclusionProof, ""},
		{"a proof hash dropped", checkpoint, edit(func(a map[string]any) { a["proof"] = a["proof"].([]any)[1:] }), client.ErrInclusionProof, ""},
		{"the entry's time changed", checkpoint, edit(func(a map[string]any) {
			e := a["entry"].(string)
			i := strings.Index(e, "Z ")
			a["entry"] = e[:i-1] + string(rune(e[i-1])^1) + e[i:]
		}), client.ErrInclusionProof, ""},
		{"the entry made another member's", checkpoint, edit(func(a map[string]any) {
			a["entry"] = strings.Replace(a["entry"].(string), " bank-a ", " bank-z ", 1)
		}), client.ErrWrongEntry, ""},
		{"no entry", checkpoint, edit(func(a map[string]any) { delete(a, "entry") }), client.ErrWrongEntry, ""},
		{"a proof for another tree", checkpoint, edit(func(a map[string]any) { a["size"] = cp.Size - 1 }), client.ErrInclusionProof,
			fmt.Sprintf("a proof for index %d in a tree of %d, want %d", idx, cp.Size-1, idx)},
		{"a proof for another index", checkpoint, edit(func(a map[string]any) { a["index"] = idx + 1 }), client.ErrInclusionProof,
			fmt.Sprintf("a proof for index %d in a tree of %d, want %d", idx+1, cp.Size, idx)},
		{"no index", checkpoint, edit(func(a map[string]any) { delete(a, "index") }), client.ErrInclusionProof,
			fmt.Sprintf("a proof for no index in a tree of %d, want %d", cp.Size, idx)},
		{"not JSON", checkpoint, []byte("<html>"), client.ErrInclusionProof, ""},
		{"a checkpoint signed by another key", forged, answer, protocol.ErrCheckpointSignature, ""},
	} {
		_, err := client.CheckInclusion(key, "bank-a", "flag-placed", idx, tc.checkpoint, tc.answer)
		var ie *client.InclusionError
		if !errors.Is(err, tc.want) || !errors.Is(err, client.ErrNotLogged) || !errors.As(err, &ie) {
			t.Errorf("%s: got %v, want %v in an InclusionError", tc.name, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %q, want it to contain %q", tc.name, err, tc.msg)
		}
		if !bytes.Equal(ie.Checkpoint, tc.checkpoint) || !bytes.Equal(ie.Answer, tc.answer) || ie.Index != idx {
			t.Errorf("%s: got evidence for entry %d with checkpoint %q and answer %q, want them as received", tc.name, ie.Index, ie.Checkpoint, ie.Answer)
		}
	}
}
