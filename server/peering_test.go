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
func startPeeredHubs(t testing.TB, quotas *api.Quotas, peerURL string, timeout time.Duration) *peeredHubs {
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
	if conf.HomeTokens[0].Issuer != h.no.URL {
		t.Errorf("got home issuer %q, want the Norwegian hub's %q", conf.HomeTokens[0].Issuer, h.no.URL)
	}
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

// TestCheckRelayToHomeHub has a member of the Swedish hub check a
// Norwegian number that a Norwegian bank flagged: the Swedish hub relays
// the check to the Norwegian hub, which answers from its records, signed
// with its keys. Both hubs log the check.
func TestCheckRelayToHomeHub(t *testing.T) {
	h := startPeeredHubs(t, nil, "", 0)
	bankSE := h.se.AddMember(t, "bank-a", api.RoleCheck)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleFlag, api.RoleCheck)
	flagged := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	placed := place(t, bankNO, flagged)

	toks := bankSE.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022", "53097248016")
	got := check(t, bankSE, "credit-application", toks...)
	r := got.Results[0]
	if r.Advice != api.AdviceVerify || r.Flag == nil || r.Flag.FlagID != placed.Flag.FlagID || len(r.Flag.Records) == 0 {
		t.Fatalf("check of the flagged number from Sweden: %+v, want verify and flag %s with its records", r, placed.Flag.FlagID)
	}
	if got.Results[1].Advice != api.AdviceNone || got.Results[1].Token != toks[1] {
		t.Errorf("second result %+v, want none for %s", got.Results[1], toks[1])
	}
	// The flag's record is the Norwegian hub's, and verifies with its keys
	// only.
	if _, err := protocol.VerifyRecord([]byte(r.Flag.Records[0]), h.no.JWKS(t)); err != nil {
		t.Errorf("the flag record does not verify with the home hub's keys: %v", err)
	}
	if _, err := protocol.VerifyRecord([]byte(r.Flag.Records[0]), h.se.JWKS(t)); err == nil {
		t.Errorf("the flag record verifies with the relaying hub's keys, want the home hub's only")
	}

	seEntry := findEntry(t, h.se, protocol.LogCheck, "bank-a", "home", "hub-no")
	if attr(seEntry, "tokens") != "2" || attr(seEntry, "purpose") != "credit-application" || seEntry.Index != got.LogIndex {
		t.Errorf("Swedish log entry %+v, want 2 tokens for credit-application at index %d", seEntry, got.LogIndex)
	}
	noEntry := findEntry(t, h.no, protocol.LogPeerCheck, "hub-se", "member", "bank-a")
	if attr(noEntry, "tokens") != "2" || attr(noEntry, "verify") != "1" {
		t.Errorf("Norwegian log entry %+v, want 2 tokens, 1 to verify", noEntry)
	}

	// One check cannot name tokens of two homes.
	own := bankSE.Tokenize(t, protocol.TypePersonalNumber, "811218-9876")[0]
	before := len(h.se.LogEntries(t))
	resp := bankSE.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Purpose: "credit-application", Tokens: []string{own.String(), toks[0].String()}})
	if p := resp.Problem(t); resp.Status != http.StatusUnprocessableEntity || p.Type != protocol.ProblemValidation.URI {
		t.Errorf("a check of Swedish and Norwegian tokens: got %d %+v, want 422 validation-failed", resp.Status, p)
	}
	if n := len(h.se.LogEntries(t)); n != before+1 {
		t.Errorf("got %d new log entries for the refused check, want its refusal only", n-before)
	}
	// A Swedish number is still checked at home.
	if c := check(t, bankSE, "credit-application", own); c.Results[0].Advice != api.AdviceNone {
		t.Errorf("check of a Swedish number: %+v, want none", c.Results[0])
	}
}

// TestHomeHubHoldsPeerChecksToItsQuota spends the Swedish hub's allowance
// of stored bytes at the Norwegian hub: a relayed check is refused there,
// and the Swedish member gets a rate-limit problem, not an answer.
func TestHomeHubHoldsPeerChecksToItsQuota(t *testing.T) {
	h := startPeeredHubs(t, &api.Quotas{StoredBytesPerDay: 1}, "", 0)
	bank := h.se.AddMember(t, "bank-a", api.RoleCheck)
	tok := bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	resp := bank.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Purpose: "credit-application", Tokens: []string{tok.String()}})
	if p := resp.Problem(t); resp.Status != http.StatusTooManyRequests || p.Type != protocol.ProblemRateLimited.URI || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %+v, want 429 rate-limited with Retry-After", resp.Status, p)
	}
	// The Swedish hub counted and logged the check; the Norwegian hub
	// stored nothing for it.
	findEntry(t, h.se, protocol.LogCheck, "bank-a", "home", "hub-no")
	for _, e := range h.no.LogEntries(t) {
		if e.Action == protocol.LogPeerCheck {
			t.Errorf("got a Norwegian log entry %+v for a check over the peer's quota, want none", e)
		}
	}
}

// TestHomeHubChecksOnlyItsOwn sends the Norwegian hub relayed checks it
// must refuse: of a Swedish token, and from a member that is no peer.
func TestHomeHubChecksOnlyItsOwn(t *testing.T) {
	h := startPeeredHubs(t, nil, "", 0)
	bankNO := h.no.AddMember(t, "bank-n", api.RoleCheck)
	fnr := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	email := bankNO.Tokenize(t, protocol.TypeEmail, "anna@example.no")[0]
	req := func(tok protocol.Token) api.PeerCheckRequest {
		return api.PeerCheckRequest{CheckRequest: api.CheckRequest{Purpose: "credit-application", Tokens: []string{tok.String()}}, Member: "bank-a"}
	}
	resp := h.seAtNO.JSON(t, http.MethodPost, peering.CheckPath, req(email))
	if p := resp.Problem(t); resp.Status != http.StatusUnprocessableEntity || p.Type != protocol.ProblemValidation.URI {
		t.Errorf("an e-mail token: got %d %+v, want 422 validation-failed", resp.Status, p)
	}
	resp = bankNO.JSON(t, http.MethodPost, peering.CheckPath, req(fnr))
	if resp.Status != http.StatusForbidden {
		t.Errorf("a member that is no peer: got %d %s, want 403", resp.Status, resp.Body)
	}
	bad := req(fnr)
	bad.Member = "Bank A"
	resp = h.seAtNO.JSON(t, http.MethodPost, peering.CheckPath, bad)
	if resp.Status != http.StatusUnprocessableEntity {
		t.Errorf("a malformed member id: got %d %s, want 422", resp.Status, resp.Body)
	}
	mustStatus(t, h.seAtNO.JSON(t, http.MethodPost, peering.CheckPath, req(fnr)), http.StatusOK)
}

// TestPeerDownCheckDelaysNothingElse registers a Norwegian hub that
// accepts connections and does not answer: while a relayed check waits
// for it, the Swedish hub checks Swedish numbers; when the peer answers
// with no check, the member gets 503 with Retry-After, and the check is
// logged at the Swedish hub.
func TestPeerDownCheckDelaysNothingElse(t *testing.T) {
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == peering.CheckPath {
			arrived <- struct{}{}
			<-release
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(hung.Close)
	h := startPeeredHubs(t, nil, hung.URL, time.Hour)
	bank := h.se.AddMember(t, "bank-a", api.RoleCheck)
	// A Norwegian token as the Norwegian hub would make it.
	fnr := h.no.AddMember(t, "bank-n", api.RoleCheck).Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]

	done := make(chan *hubtest.Response, 1)
	go func() {
		done <- bank.JSON(t, http.MethodPost, "/v1/check", api.CheckRequest{Purpose: "credit-application", Tokens: []string{fnr.String()}})
	}()
	select {
	case <-arrived:
	case resp := <-done:
		t.Fatalf("the check was answered (%d %s) without reaching the peer", resp.Status, resp.Body)
	}
	tok := bank.Tokenize(t, protocol.TypePersonalNumber, "811218-9876")[0]
	check(t, bank, "credit-application", tok)
	select {
	case resp := <-done:
		t.Fatalf("the relayed check ended (%d) before the peer answered", resp.Status)
	default:
	}
	close(release)
	resp := <-done
	if p := resp.Problem(t); resp.Status != http.StatusServiceUnavailable || p.Type != protocol.ProblemUnavailable.URI || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d %+v, want 503 unavailable with Retry-After", resp.Status, p)
	}
	findEntry(t, h.se, protocol.LogCheck, "bank-a", "home", "hub-no")
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

// FuzzPeerCheck sends arbitrary check bodies to a Swedish hub peered with
// a Norwegian one, and arbitrary relayed checks to the Norwegian hub as
// the Swedish one: neither may answer 5xx (but the 503 of a relay), and
// every refusal is a problem document.
func FuzzPeerCheck(f *testing.F) {
	h := startPeeredHubs(f, nil, "", 0)
	bank := h.se.AddMember(f, "bank-a", api.RoleCheck)
	fnr := bank.Tokenize(f, protocol.TypeNorwegianNumber, "13097248022")[0].String()
	pnr := bank.Tokenize(f, protocol.TypePersonalNumber, "811218-9876")[0].String()
	for _, s := range []string{
		`{"purpose":"payment","tokens":["` + fnr + `"]}`,
		`{"purpose":"payment","tokens":["` + fnr + `","` + pnr + `"]}`,
		`{"purpose":"payment","tokens":["fnr.2.AAAA"],"member":"bank-a"}`,
		`{"purpose":"curiosity","tokens":["` + fnr + `"],"member":"Bank A"}`,
		`{"purpose":"payment","tokens":[],"member":"bank-a"}`,
	} {
		f.Add(false, []byte(s))
		f.Add(true, []byte(s))
	}
	f.Fuzz(func(t *testing.T, relayed bool, body []byte) {
		m, path := bank, "/v1/check"
		if relayed {
			m, path = h.seAtNO, peering.CheckPath
		}
		resp := m.Do(t, http.MethodPost, path, "application/json", body)
		if resp.Status >= 500 && resp.Status != http.StatusServiceUnavailable {
			t.Fatalf("%s %q: got %d %s", path, body, resp.Status, resp.Body)
		}
		if resp.Status >= 400 {
			if p := resp.Problem(t); p.Detail == "" {
				t.Errorf("%s %q: got a problem without detail: %+v", path, body, p)
			}
		}
	})
}
