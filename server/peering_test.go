package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// peeredHubs is a Swedish and a Norwegian hub on loopback, the Swedish one
// registered at the Norwegian one as peer hub-se, and the Norwegian one
// registered at the Swedish one as hub-no, home to Norwegian numbers.
type peeredHubs struct {
	se, no *hubtest.Hub
	// seAtNO is the Swedish hub as the Norwegian one knows it: a member
	// with role peer, whose key the Swedish hub signs its requests with.
	seAtNO *hubtest.Member
}

// startPeeredHubs starts the two hubs. quotas, if not nil, are the
// Norwegian operator's quotas for the Swedish hub; peerURL, if not "",
// replaces the Norwegian hub's URL in the Swedish registration (a hub
// that is down); timeout, if not 0, bounds each relayed request.
func startPeeredHubs(t *testing.T, quotas *api.Quotas, peerURL string, timeout time.Duration) *peeredHubs {
	t.Helper()
	no := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Jurisdiction = "NO" }})
	key, jwks := hubtest.NewKey(t)
	if _, err := no.Operator.Client().AddMember(context.Background(), api.MemberRequest{
		ID: "hub-se", Name: "Spärr Sverige", Roles: []api.Role{api.RolePeer}, JWKS: jwks, Quotas: quotas,
	}); err != nil {
		t.Fatal(err)
	}
	if peerURL == "" {
		peerURL = no.URL
	}
	noToken := no.Configuration().Token
	se := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Jurisdiction = "SE"
		c.Peers = []*peering.Peer{{ID: "hub-no", Jurisdiction: "NO", URL: peerURL, Member: "hub-se", Key: key, Token: noToken, Timeout: timeout}}
	}})
	return &peeredHubs{se: se, no: no, seAtNO: no.Member("hub-se", key)}
}

// TestTokenRelayToHomeHub has a member of the Swedish hub tokenize a
// Norwegian number: the Swedish hub relays the blinded batch to the
// Norwegian hub, and the token is the one a member of the Norwegian hub
// gets there, under the Norwegian key only. Both hubs log the batch, each
// with the other's part in it.
func TestTokenRelayToHomeHub(t *testing.T) {
	h := startPeeredHubs(t, nil, "", 0)
	bankSE := h.se.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleCheck)

	conf := h.se.Configuration()
	if len(conf.HomeTokens) != 1 || conf.HomeTokens[0].Jurisdiction != "NO" || !slices.Equal(conf.HomeTokens[0].Types, []protocol.IdentifierType{protocol.TypeNorwegianNumber}) {
		t.Fatalf("got home tokens %+v, want the Norwegian hub's, for fnr", conf.HomeTokens)
	}
	if got, want := conf.TokenKeyFor(protocol.TypeNorwegianNumber), h.no.Configuration().Token; !slices.Equal(got.Key, want.Key) {
		t.Errorf("got the key %v for fnr, want the Norwegian hub's", got)
	}

	relayed := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "130972 48022", "53097248016")
	direct := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022", "53097248016")
	if !slices.Equal(relayed, direct) {
		t.Fatalf("got relayed tokens %v, want the home hub's %v", relayed, direct)
	}
	// The Swedish hub keeps Swedish numbers and e-mail under its own key.
	pnr := bankSE.Tokenize(t, protocol.TypePersonalNumber, "811218-9876")[0]
	if pnr.Epoch != conf.Token.Epoch {
		t.Errorf("got a pnr token of epoch %d, want the Swedish hub's %d", pnr.Epoch, conf.Token.Epoch)
	}
	bankSE.Tokenize(t, protocol.TypeEmail, "anna@example.se")

	// The relayed token works like any other at the Swedish hub.
	placed := place(t, bankSE, relayed[0])
	if r := check(t, bankSE, "credit-application", relayed[0]).Results[0]; r.Flag == nil || r.Flag.FlagID != placed.Flag.FlagID {
		t.Errorf("check of the relayed token: %+v, want flag %s", r, placed.Flag.FlagID)
	}

	seEntry := findEntry(t, h.se, protocol.LogTokens, "bank-a", "type", "fnr")
	if attr(seEntry, "home") != "hub-no" || attr(seEntry, "count") != "2" {
		t.Errorf("Swedish log entry %+v, want count 2 and home hub-no", seEntry)
	}
	noEntry := findEntry(t, h.no, protocol.LogPeerTokens, "hub-se", "type", "fnr")
	if attr(noEntry, "member") != "bank-a" || attr(noEntry, "count") != "2" {
		t.Errorf("Norwegian log entry %+v, want count 2 for member bank-a", noEntry)
	}
}

// TestHomeHubHoldsPeerToItsQuota gives the Swedish hub a daily quota of
// three identifiers at the Norwegian hub: a fourth is refused there, and
// the Swedish member gets a rate-limit problem, not a token.
func TestHomeHubHoldsPeerToItsQuota(t *testing.T) {
	h := startPeeredHubs(t, &api.Quotas{TokensPerDay: 3}, "", 0)
	bank := h.se.AddMember(t, "bank-a", api.RoleCheck)
	bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022", "53097248016", "10915596784")
	_, err := bank.Client().Tokenize(context.Background(), protocol.TypeNorwegianNumber, "02013299997")
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests {
		t.Fatalf("got %v, want 429 from the Swedish hub", err)
	}
	refused := findEntry(t, h.no, protocol.LogPeerTokens, "hub-se", "count", "1")
	if refused.Result != "rejected:token-quota-exceeded" {
		t.Errorf("Norwegian log entry %+v, want the quota refusal", refused)
	}
}

// TestHomeHubEvaluatesOnlyItsOwn sends the Norwegian hub relayed batches
// it must refuse: a Swedish number (it is not home to it, and a relayed
// batch is not relayed again), and a batch from a member that is no peer.
func TestHomeHubEvaluatesOnlyItsOwn(t *testing.T) {
	h := startPeeredHubs(t, nil, "", 0)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleCheck)
	tc, err := protocol.NewTokenClient(h.no.Configuration().Token)
	if err != nil {
		t.Fatal(err)
	}
	_, req, err := tc.Blind(protocol.TypePersonalNumber, "198112189876")
	if err != nil {
		t.Fatal(err)
	}
	resp := h.seAtNO.JSON(t, http.MethodPost, peering.TokensPath, api.PeerTokenRequest{TokenRequest: *req, Member: "bank-a"})
	if p := resp.Problem(t); resp.Status != http.StatusUnprocessableEntity || p.Type != protocol.ProblemValidation.URI {
		t.Errorf("a Swedish number: got %d %+v, want 422 validation-failed", resp.Status, p)
	}
	_, req, err = tc.Blind(protocol.TypeNorwegianNumber, "13097248022")
	if err != nil {
		t.Fatal(err)
	}
	resp = bankNO.JSON(t, http.MethodPost, peering.TokensPath, api.PeerTokenRequest{TokenRequest: *req, Member: "bank-a"})
	if resp.Status != http.StatusForbidden {
		t.Errorf("a member that is no peer: got %d %s, want 403", resp.Status, resp.Body)
	}
	resp = h.seAtNO.JSON(t, http.MethodPost, peering.TokensPath, api.PeerTokenRequest{TokenRequest: *req, Member: "Bank A"})
	if resp.Status != http.StatusBadRequest {
		t.Errorf("a malformed member id: got %d %s, want 400", resp.Status, resp.Body)
	}
	resp = h.seAtNO.JSON(t, http.MethodPost, peering.TokensPath, api.PeerTokenRequest{TokenRequest: *req, Member: "bank-a"})
	mustStatus(t, resp, http.StatusOK)
	// A member of the Norwegian hub cannot have a Swedish number
	// tokenized: the Norwegian hub has no peer in Sweden.
	_, err = bankNO.Client().Tokenize(context.Background(), protocol.TypePersonalNumber, "811218-9876")
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity {
		t.Errorf("a Swedish number at the Norwegian hub: got %v, want 422", err)
	}
}

// TestPeerDownDelaysNothingElse registers a Norwegian hub that accepts
// connections and does not answer: while a relayed batch waits for it, the
// Swedish hub answers its members' other requests; when the peer answers
// with no evaluation, the member gets a problem, not tokens.
func TestPeerDownDelaysNothingElse(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
	}))
	t.Cleanup(hung.Close)
	h := startPeeredHubs(t, nil, hung.URL, time.Hour)
	bank := h.se.AddMember(t, "bank-a", api.RoleCheck)

	done := make(chan error, 1)
	go func() {
		_, err := bank.Client().Tokenize(context.Background(), protocol.TypeNorwegianNumber, "13097248022")
		done <- err
	}()
	<-arrived
	// The relayed batch is held at the peer until released, and Swedish
	// numbers tokenize and checks answer meanwhile.
	tok := bank.Tokenize(t, protocol.TypePersonalNumber, "811218-9876")[0]
	check(t, bank, "credit-application", tok)
	select {
	case err := <-done:
		t.Fatalf("the relayed batch ended (%v) before the peer answered", err)
	default:
	}
	close(release)
	err := <-done
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want 503 for a peer that answered no evaluation", err)
	}
}

// TestPeerTimeout registers a Norwegian hub that never answers: the
// relayed batch fails with a problem once the peer's timeout passes.
func TestPeerTimeout(t *testing.T) {
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body, so that the server notices the hub hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	h := startPeeredHubs(t, nil, hung.URL, 100*time.Millisecond)
	bank := h.se.AddMember(t, "bank-a", api.RoleCheck)
	_, err := bank.Client().Tokenize(context.Background(), protocol.TypeNorwegianNumber, "13097248022")
	var p *client.Problem
	if !errors.As(err, &p) || p.Status != http.StatusServiceUnavailable {
		t.Fatalf("got %v, want 503 once the peer's timeout passed", err)
	}
	// Nothing of the failed relay stays behind: Swedish numbers still
	// tokenize.
	bank.Tokenize(t, protocol.TypePersonalNumber, "811218-9876")
}

// findEntry returns the last entry of hub's log with action by member
// whose attribute key is value, failing t if there is none.
func findEntry(t *testing.T, hub *hubtest.Hub, action protocol.LogAction, member, key, value string) *protocol.LogEntry {
	t.Helper()
	entries := hub.LogEntries(t)
	for i := len(entries) - 1; i >= 0; i-- {
		if e := entries[i]; e.Action == action && e.Member == member && attr(e, key) == value {
			return e
		}
	}
	t.Fatalf("got no %s entry by %s with %s=%s in the log", action, member, key, value)
	return nil
}

// attr returns the value of e's attribute key, or "".
func attr(e *protocol.LogEntry, key string) string {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}
