package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// apiPeeredHubs is a Norwegian hub that knows the Swedish one as member
// hub-se (role peer), and a Swedish hub with no peers file, whose peer key
// directory holds its key for Norway as hub-no.jwk.
type apiPeeredHubs struct {
	se, no *hubtest.Hub
	keyDir string
	// private is the private JWK in hub-no.jwk.
	private []byte
}

func startAPIPeeredHubs(t *testing.T) *apiPeeredHubs {
	t.Helper()
	no := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Jurisdiction = "NO" }})
	key, jwks := hubtest.NewKey(t)
	if _, err := no.Operator.Client().AddMember(context.Background(), api.MemberRequest{
		ID: "hub-se", Name: "Spärr Sverige", Roles: []api.Role{api.RolePeer}, JWKS: jwks,
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	private, err := key.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hub-no.jwk"), private, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "open.jwk"), private, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "open.jwk"), 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	se := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Jurisdiction = "SE"
		c.PeerKeyDir = dir
	}})
	return &apiPeeredHubs{se: se, no: no, keyDir: dir, private: private}
}

func (h *apiPeeredHubs) request() api.PeerRequest {
	return api.PeerRequest{ID: "hub-no", Jurisdiction: "NO", URL: h.no.URL, Member: "hub-se", KeyFile: "hub-no.jwk",
		Token: h.no.Configuration().Token, Policy: api.PeerPolicy{IdentifierTypes: []protocol.IdentifierType{protocol.TypeNorwegianNumber}}}
}

// TestPeerRegisteredThroughAPI registers the Norwegian hub at the Swedish
// one through the operator API: refused registrations change nothing; the
// registration is logged, relays at once, survives a restart, and its
// removal stops the relay. The private key never enters the data file.
func TestPeerRegisteredThroughAPI(t *testing.T) {
	h := startAPIPeeredHubs(t)
	ctx := context.Background()
	op := h.se.Operator.Client()
	bankSE := h.se.AddMember(t, "bank-a", api.RoleCheck)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleCheck)

	if _, err := bankSE.Client().Tokenize(ctx, protocol.TypeNorwegianNumber, "13097248022"); !isStatus(err, http.StatusUnprocessableEntity) {
		t.Fatalf("a Norwegian number before Norway is registered: got %v, want 422", err)
	}
	before := len(h.se.LogEntries(t))
	for name, c := range map[string]struct {
		change func(*api.PeerRequest)
		status int
	}{
		"key file outside the directory": {func(r *api.PeerRequest) { r.KeyFile = "../hub-no.jwk" }, http.StatusUnprocessableEntity},
		"key file missing":               {func(r *api.PeerRequest) { r.KeyFile = "hub-dk.jwk" }, http.StatusUnprocessableEntity},
		"key file readable by others":    {func(r *api.PeerRequest) { r.KeyFile = "open.jwk" }, http.StatusUnprocessableEntity},
		"own jurisdiction":               {func(r *api.PeerRequest) { r.Jurisdiction = "SE" }, http.StatusUnprocessableEntity},
		"lower-case jurisdiction":        {func(r *api.PeerRequest) { r.Jurisdiction = "no" }, http.StatusUnprocessableEntity},
		"no token key":                   {func(r *api.PeerRequest) { r.Token = protocol.TokenPublicKey{} }, http.StatusUnprocessableEntity},
		"unknown identifier type":        {func(r *api.PeerRequest) { r.Policy.IdentifierTypes = []protocol.IdentifierType{"ssn"} }, http.StatusUnprocessableEntity},
	} {
		req := h.request()
		c.change(&req)
		if _, err := op.AddPeer(ctx, req); !isStatus(err, c.status) {
			t.Errorf("%s: got %v, want %d", name, err, c.status)
		}
	}
	if ps, err := op.Peers(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("after refused registrations: got %v, %v; want no peer", ps, err)
	}
	if n := len(h.se.LogEntries(t)); n != before+7 {
		t.Errorf("got %d new log entries for seven refusals, want 7", n-before)
	}

	added, err := op.AddPeer(ctx, h.request())
	if err != nil {
		t.Fatal(err)
	}
	if added.Peer.Source != api.PeerFromAPI || added.Peer.KeyID == "" || added.LogIndex == 0 {
		t.Errorf("got %+v, want a peer from the API with its key id, logged", added)
	}
	e := findEntry(t, h.se, protocol.LogPeerRegistered, server.OperatorID, "peer", "hub-no")
	if attr(e, "jurisdiction") != "NO" || e.Index != added.LogIndex {
		t.Errorf("log entry %+v, want jurisdiction NO at index %d", e, added.LogIndex)
	}
	// The member read the discovery document before Norway was there.
	if err := bankSE.Client().Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	relayed := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")
	direct := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")
	if !slices.Equal(relayed, direct) {
		t.Fatalf("got relayed %v, want the home hub's %v", relayed, direct)
	}
	if conf := h.se.Configuration(); len(conf.HomeTokens) != 1 || conf.HomeTokens[0].Issuer != h.no.URL {
		t.Errorf("discovery home tokens %+v, want Norway's", conf.HomeTokens)
	}

	for name, req := range map[string]api.PeerRequest{
		"same id":           h.request(),
		"same jurisdiction": func() api.PeerRequest { r := h.request(); r.ID = "hub-no2"; return r }(),
	} {
		if _, err := op.AddPeer(ctx, req); !errors.Is(err, client.ErrStateConflict) {
			t.Errorf("%s: got %v, want a state conflict", name, err)
		}
	}

	// The data file holds the registration, not the key.
	var jwk struct {
		D string `json:"d"`
	}
	if err := json.Unmarshal(h.private, &jwk); err != nil {
		t.Fatal(err)
	}
	h.se.Restart(t)
	db, err := os.ReadFile(filepath.Join(h.se.Dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	if jwk.D == "" || bytes.Contains(db, []byte(jwk.D)) {
		t.Fatalf("the data file holds the peer's private key (or the key has no d)")
	}
	if !bytes.Contains(db, []byte(`"key_file":"hub-no.jwk"`)) {
		t.Errorf("the data file does not hold the registration")
	}
	if again := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022"); !slices.Equal(again, direct) {
		t.Errorf("after a restart: got %v, want %v", again, direct)
	}

	if _, err := op.RemovePeer(ctx, "hub-no"); err != nil {
		t.Fatal(err)
	}
	findEntry(t, h.se, protocol.LogPeerRemoved, server.OperatorID, "peer", "hub-no")
	if _, err := bankSE.Client().Tokenize(ctx, protocol.TypeNorwegianNumber, "53097248016"); !isStatus(err, http.StatusUnprocessableEntity) {
		t.Errorf("after removal: got %v, want 422", err)
	}
	if _, err := op.RemovePeer(ctx, "hub-no"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("a second removal: got %v, want not found", err)
	}
}

// TestPeerFileClashes registers through the API a peer for the
// jurisdiction of a peer of the peers file, and removes the file's peer:
// both are refused.
func TestPeerFileClashes(t *testing.T) {
	h := startPeeredHubs(t, nil, "", 0)
	op := h.se.Operator.Client()
	ctx := context.Background()
	req := api.PeerRequest{ID: "hub-no2", Jurisdiction: "NO", URL: h.no.URL, Member: "hub-se", KeyFile: "hub-no.jwk", Token: h.no.Configuration().Token}
	if _, err := op.AddPeer(ctx, req); err == nil {
		t.Error("a second peer for NO: got no error")
	}
	if _, err := op.RemovePeer(ctx, "hub-no"); !errors.Is(err, client.ErrStateConflict) {
		t.Errorf("removing the peers file's peer: got %v, want a state conflict", err)
	}
	ps, err := op.Peers(ctx)
	if err != nil || len(ps) != 1 || ps[0].Source != api.PeerFromFile || ps[0].ID != "hub-no" {
		t.Fatalf("got %+v, %v; want hub-no from the file", ps, err)
	}
}

// TestPeerTokenKeyRotation rotates the Norwegian hub's token key (a new
// key of epoch 2, and a restart): the Swedish member's next Norwegian
// token is refused by Norway for its old epoch, the Swedish hub reads
// Norway's configuration and publishes the new key, and the SDK's retry
// gets the token under it. Through the overlap the Swedish hub still
// relays the old epoch (Norway decides); an epoch it never knew it refuses
// itself.
func TestPeerTokenKeyRotation(t *testing.T) {
	h := startPeeredHubs(t, nil, "", 0)
	bankSE := h.se.AddMember(t, "bank-a", api.RoleCheck)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleCheck)
	old := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	if old.Epoch != 1 {
		t.Fatalf("got epoch %d, want 1", old.Epoch)
	}

	tk, err := protocol.GenerateTokenKey(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tk.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.no.Dir, "keys", "token.key"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	h.no.Restart(t)

	relayed := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")
	direct := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")
	if !slices.Equal(relayed, direct) || relayed[0].Epoch != 2 {
		t.Fatalf("after the rotation: got %v, want the home hub's %v of epoch 2", relayed, direct)
	}
	conf := h.se.Configuration()
	if got := conf.TokenKeyFor(protocol.TypeNorwegianNumber); got.Epoch != 2 {
		t.Errorf("the Swedish discovery document lists Norway's epoch %d, want 2", got.Epoch)
	}

	// A request of epoch 1 is still relayed (Norway refuses it, having no
	// overlap of its own); one of epoch 3 is refused in Sweden.
	for epoch, want := range map[uint32]string{1: "home hub", 3: "epoch"} {
		tc, err := protocol.NewTokenClient(protocol.TokenPublicKey{Suite: tk.Public().Suite, Epoch: epoch, Key: tk.Public().Key})
		if err != nil {
			t.Fatal(err)
		}
		_, req, err := tc.Blind(protocol.TypeNorwegianNumber, "13097248022")
		if err != nil {
			t.Fatal(err)
		}
		resp := bankSE.JSON(t, http.MethodPost, "/v1/tokens", req)
		p := resp.Problem(t)
		if resp.Status != http.StatusBadRequest || !bytes.Contains([]byte(p.Detail), []byte(want)) {
			t.Errorf("epoch %d: got %d %q, want 400 mentioning %q", epoch, resp.Status, p.Detail, want)
		}
	}
	findEntry(t, h.se, protocol.LogTokens, "bank-a", "epoch", "1")
}

func isStatus(err error, status int) bool {
	var p *client.Problem
	return errors.As(err, &p) && p.Status == status
}

// FuzzPeerTokenKey reads arbitrary discovery documents as a peer's: a
// key is taken only from the document of the peer's issuer, and only if
// it parses.
func FuzzPeerTokenKey(f *testing.F) {
	tk, err := protocol.GenerateTokenKey(2, nil)
	if err != nil {
		f.Fatal(err)
	}
	good, err := json.Marshal(map[string]any{"issuer": "https://sparr.example.no", "token": tk.Public()})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"issuer":"https://other.example","token":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := server.PeerTokenKey(data, "https://sparr.example.no")
		if err != nil {
			return
		}
		if _, err := protocol.NewTokenClient(tok); err != nil {
			t.Fatalf("took a key that does not parse: %v", err)
		}
		if !bytes.Contains(data, []byte("sparr.example.no")) {
			t.Fatalf("took a key from another issuer's document")
		}
	})
}

// peerKeyDir returns a peer key directory holding a private key as
// hub-se.jwk.
func peerKeyDir(t *testing.T) string {
	t.Helper()
	key, _ := hubtest.NewKey(t)
	b, err := key.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hub-se.jwk"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
