package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// flagResponse is the answer to a flag submission.
type flagResponse struct {
	Flag struct {
		FlagID    string    `json:"flag_id"`
		Subject   string    `json:"subject"`
		Kind      string    `json:"kind"`
		Status    string    `json:"status"`
		Thawed    bool      `json:"thawed"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"flag"`
	Record   string `json:"record"`
	Existing bool   `json:"existing"`
	LogIndex uint64 `json:"log_index"`
}

func check(t *testing.T, m *hubtest.Member, purpose string, tokens ...protocol.Token) api.CheckResponse {
	t.Helper()
	texts := make([]string, len(tokens))
	for i, tok := range tokens {
		texts[i] = tok.String()
	}
	resp := m.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": purpose, "tokens": texts})
	if resp.Status != http.StatusOK {
		t.Fatalf("check: %d %s", resp.Status, resp.Body)
	}
	var out api.CheckResponse
	resp.JSON(t, &out)
	return out
}

func mustStatus(t *testing.T, resp *hubtest.Response, want int) {
	t.Helper()
	if resp.Status != want {
		t.Fatalf("got status %d, want %d: %s", resp.Status, want, resp.Body)
	}
}

// TestConsumerStory follows one consumer: protection placed at Bank A,
// a check at Bank B says verify, a thaw at Bank C, a check says thawed,
// the lift, and a check says none; every record verifies against the
// hub's JWKS.
func TestConsumerStory(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bankA := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	bankB := hub.AddMember(t, "bank-b", api.RoleCheck)
	bankC := hub.AddMember(t, "bank-c", api.RoleFlag, api.RoleCheck)
	jwks := hub.JWKS(t)

	pnr, err := protocol.Canonicalize(protocol.TypePersonalNumber, "19090527+1474", hub.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok := bankA.Tokenize(t, protocol.TypePersonalNumber, pnr)[0]
	// Tokens are the same whichever member asks.
	if other := bankB.Tokenize(t, protocol.TypePersonalNumber, pnr)[0]; other != tok {
		t.Fatalf("bank-b got token %s, bank-a %s", other, tok)
	}

	// 1. Bank A places the flag, with the consumer's consent.
	before := hub.Now().Truncate(time.Second)
	resp := bankA.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bankA.Consent(tok)})
	after := hub.Now()
	mustStatus(t, resp, http.StatusCreated)
	var placed flagResponse
	resp.JSON(t, &placed)
	rec, err := protocol.VerifyRecord([]byte(placed.Record), jwks)
	if err != nil {
		t.Fatalf("placed record: %v", err)
	}
	ev, ok := rec.Event.(protocol.FlagPlaced)
	if !ok || ev.FlagID != placed.Flag.FlagID || ev.Origin != "bank-a" || rec.Issuer != hub.URL {
		t.Fatalf("placed record %+v does not match flag %+v", rec, placed.Flag)
	}
	if subj, _ := rec.Subject.Tokens(); len(subj) != 1 || subj[0] != tok {
		t.Fatalf("record subject %v, want %s", subj, tok)
	}
	// A standard flag lasts a year (365 days) from when the hub placed it.
	if e := placed.Flag.ExpiresAt; e.Before(before.Add(365*24*time.Hour)) || e.After(after.Add(365*24*time.Hour)) {
		t.Errorf("flag expires %s, want 365 days after it was placed, between %s and %s", e, before, after)
	}

	// 2. A fraudster applies for credit at Bank B: verify.
	got := check(t, bankB, "credit-application", tok)
	r := got.Results[0]
	if r.Advice != api.AdviceVerify || r.Flag == nil || r.Flag.Thawed || len(r.Flag.Records) != 1 {
		t.Fatalf("check after place: %+v, want advice verify with the placed record", r)
	}
	if _, err := protocol.VerifyRecord([]byte(r.Flag.Records[0]), jwks); err != nil {
		t.Errorf("record in check: %v", err)
	}

	// 3. The consumer thaws the flag for an hour at Bank C.
	until := hub.Now().Add(time.Hour)
	resp = bankC.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/thaw", protocol.ThawFlag{FlagID: placed.Flag.FlagID, ThawUntil: protocol.NewNumericDate(until)})
	mustStatus(t, resp, http.StatusOK)
	var thawed flagResponse
	resp.JSON(t, &thawed)
	if !thawed.Flag.Thawed {
		t.Errorf("thaw answer %+v, want thawed", thawed.Flag)
	}
	if rec, err := protocol.VerifyRecord([]byte(thawed.Record), jwks); err != nil {
		t.Errorf("thaw record: %v", err)
	} else if ev, ok := rec.Event.(protocol.FlagThawed); !ok || ev.Origin != "bank-c" || ev.ThawedUntil != protocol.NewNumericDate(until) {
		t.Errorf("thaw record event %+v", rec.Event)
	}

	// 4. Bank C's check now says the flag is thawed: no need to verify.
	r = check(t, bankC, "credit-application", tok).Results[0]
	if r.Advice != api.AdviceNone || r.Flag == nil || !r.Flag.Thawed || r.Flag.ThawUntil.IsZero() || len(r.Flag.Records) != 2 {
		t.Fatalf("check during thaw: %+v, want a thawed flag with two records and advice none", r)
	}

	// 5. The consumer lifts the flag at Bank A.
	resp = bankA.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID})
	mustStatus(t, resp, http.StatusOK)
	var lifted flagResponse
	resp.JSON(t, &lifted)
	if lifted.Flag.Status != "lifted" || lifted.Flag.Subject != "" {
		t.Errorf("lift answer %+v, want status lifted and no subject", lifted.Flag)
	}
	if rec, err := protocol.VerifyRecord([]byte(lifted.Record), jwks); err != nil {
		t.Errorf("lift record: %v", err)
	} else if _, ok := rec.Event.(protocol.FlagLifted); !ok {
		t.Errorf("lift record event %T", rec.Event)
	}

	// 6. Checks now say none, and the hub has forgotten the consent and the
	// earlier records.
	r = check(t, bankB, "account-opening", tok).Results[0]
	if r.Advice != api.AdviceNone || r.Flag != nil || r.Suspicions != nil {
		t.Fatalf("check after lift: %+v, want advice none and nothing else", r)
	}
	if _, err := hub.Store.Consent(placed.Flag.FlagID); err == nil {
		t.Error("the consent survived the lift")
	}
	placedRec, _ := protocol.VerifyRecord([]byte(placed.Record), jwks)
	if resp := bankB.Do(t, http.MethodGet, "/v1/records/"+placedRec.ID, "", nil); resp.Status != http.StatusNotFound {
		t.Errorf("placed record after lift: status %d, want 404", resp.Status)
	}

	// The log holds every step, and never the token.
	var actions []string
	for _, e := range hub.LogEntries(t) {
		actions = append(actions, string(e.Action))
	}
	joined := strings.Join(actions, " ")
	for _, want := range []string{"flag-placed", "check", "flag-thawed", "flag-lifted", "tokens"} {
		if !strings.Contains(joined, want) {
			t.Errorf("log actions %q lack %q", joined, want)
		}
	}
	assertLogHoldsNoTokens(t, hub, tok)
}

// assertLogHoldsNoTokens fails if any log line contains a token, its
// value, or anything shaped like a personnummer.
func assertLogHoldsNoTokens(t *testing.T, hub *hubtest.Hub, toks ...protocol.Token) {
	t.Helper()
	n, _ := hub.Store.LogSize()
	lines, _ := hub.Store.LogEntries(0, n)
	for _, l := range lines {
		for _, tok := range toks {
			if strings.Contains(string(l), tok.String()) || strings.Contains(string(l), tok.String()[6:20]) {
				t.Errorf("log entry %q holds a token", l)
			}
		}
		if strings.Contains(string(l), "pnr.") || strings.Contains(string(l), "19090527") {
			t.Errorf("log entry %q holds an identifier or token", l)
		}
	}
}
