package state_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// update rewrites testdata/commands.jsonl:
//
//	go test ./server/state -run TestGoldenEncoding -update
//
// A diff in it is a change of the encoding: give it a new
// state.EncodingVersion, and keep reading the old one.
var update = flag.Bool("update", false, "rewrite testdata/commands.jsonl")

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.UTC)

func head(actor string, action protocol.LogAction) state.Head {
	return state.Head{At: t0, Actor: actor, Entry: state.Entry{
		Action: action, Salt: bytes.Repeat([]byte{7}, 32), Details: []byte(`{"flag_id":"f-1","subject":"email.1.AAAA"}`),
		Subjects: []string{"email.1.AAAA"}, Attrs: []protocol.LogAttr{{Key: "purpose", Value: "payment"}},
	}}
}

func record(id string, t protocol.EventType) *state.Record {
	return &state.Record{ID: id, Type: t, Subjects: []string{"email.1.AAAA"}, Ref: "f-1", IssuedAt: t0.Truncate(time.Second), JWS: "eyJhbGciOiJFZERTQSJ9.e30.c2ln"}
}

func flagOf(version uint64, status api.FlagStatus) *state.Flag {
	return &state.Flag{ID: "f-1", Version: version, Subject: "email.1.AAAA", Kind: protocol.FlagKindStandard, Origin: "bank-a",
		Status: status, PlacedAt: t0.Truncate(time.Second), ExpiresAt: t0.AddDate(1, 0, 0).Truncate(time.Second),
		ConsentID: "c-1", Records: []string{"r-1"}, RemindAt: t0.AddDate(0, 11, 0).Truncate(time.Second)}
}

func suspicionOf(version uint64, status api.SuspicionStatus) *state.Suspicion {
	return &state.Suspicion{ID: "s-1", Version: version, Subjects: []string{"email.1.AAAA"}, Category: protocol.CategoryIdentityTheft,
		Origin: "bank-a", Status: status, ReportedAt: t0.Truncate(time.Second), ExpiresAt: t0.AddDate(2, 0, 0).Truncate(time.Second),
		PoliceReport: &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K1-26", Date: "2026-11-20"}, Records: []string{"r-s", "r-hit"}}
}

func charged(h state.Head) state.Head {
	h.Quota = &state.Quota{Member: h.Actor, Day: "2026-11-21", Bytes: 1234, Limit: 256 << 20}
	return h
}

var sub = state.SubmissionRef{ID: "jti-1", Hash: bytes.Repeat([]byte{9}, 32)}

// examples returns one command of every kind, as the hub's decisions make
// them.
func examples() []state.Command {
	lapsed := &state.EndFlag{Head: head("hub", protocol.LogFlagExpired), Record: record("r-exp", protocol.EventFlagExpired),
		Flag:  &state.Flag{ID: "f-0", Version: 2, Kind: protocol.FlagKindStandard, Origin: "bank-a", Status: api.FlagExpired, Records: []string{"r-exp"}, EndedAt: t0},
		Erase: state.Erase{Records: []string{"r-0"}, Consent: "f-0", Subjects: []string{"email.1.AAAA"}, Actions: []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogCheck}, Basis: "flag-expired"}}
	d := webhook.Delivery{Member: "bank-b", Seq: 17, PrevSeq: 12, Record: "r-1", Type: protocol.EventFlagPlaced, WebhookID: "r-1_bank-b", Attempts: 2, EnqueuedAt: t0}
	return []state.Command{
		&state.PlaceFlag{Head: head("bank-a", protocol.LogFlagPlaced), Submission: sub, Record: record("r-1", protocol.EventFlagPlaced),
			Flag: flagOf(1, api.FlagActive), Consent: json.RawMessage(`{"consent":{"id":"c-1"},"flag_id":"f-1"}`), Lapsed: lapsed},
		&state.ChangeFlag{Head: head("bank-a", protocol.LogFlagThawed), Submission: &sub, Record: record("r-2", protocol.EventFlagThawed), Flag: flagOf(2, api.FlagActive)},
		&state.EndFlag{Head: head("bank-a", protocol.LogFlagLifted), Submission: &sub, Record: record("r-3", protocol.EventFlagLifted),
			Flag: flagOf(3, api.FlagLifted), Erase: state.Erase{Records: []string{"r-1", "r-2"}, Consent: "f-1", Basis: "consent-withdrawn"}},
		&state.ReportSuspicion{Head: head("bank-a", protocol.LogSuspicionReported), Submission: sub,
			Records: []*state.Record{record("r-s", protocol.EventSuspicionReported), record("r-hit", protocol.EventSuspicionReported)}, Suspicion: suspicionOf(1, api.SuspicionActive)},
		&state.EndSuspicion{Head: head("bank-a", protocol.LogSuspicionRetracted), Submission: &sub, Record: record("r-ret", protocol.EventSuspicionRetracted),
			Suspicion: suspicionOf(2, api.SuspicionRetracted), Erase: state.Erase{Records: []string{"r-s", "r-hit"}, Basis: "suspicion-retracted"}},
		&state.EraseSubject{Head: head("operator", protocol.LogSubjectErased), Records: []*state.Record{record("r-er", protocol.EventSubjectErased)},
			Flag: flagOf(4, api.FlagErased), Suspicions: []*state.Suspicion{suspicionOf(2, api.SuspicionErased)},
			Erase: state.Erase{Records: []string{"r-1"}, LogEntries: []uint64{3, 5}, Subjects: []string{"email.1.AAAA"}, Consent: "f-1", Basis: "gdpr-art-17"}},
		&state.AddCheck{Head: charged(head("bank-b", protocol.LogCheck)), Check: &state.Check{ID: "k-1", Member: "bank-b", Purpose: "payment", At: t0, Tokens: 1, Verify: 1}},
		&state.SetOutcome{Head: head("bank-b", protocol.LogCheckOutcome), Check: &state.Check{ID: "k-1", Member: "bank-b", Purpose: "payment", At: t0, Tokens: 1, Verify: 1, Outcome: "verified", OutcomeAt: t0}},
		&state.PutMember{Head: head("operator", protocol.LogMemberAdded), Create: true, Member: &api.Member{ID: "bank-b", Name: "Bank B", Roles: []api.Role{api.RoleCheck},
			JWKSURL: "https://keys.bank-b.example/jwks.json", Status: api.MemberActive, CreatedAt: t0, UpdatedAt: t0}},
		&state.ChangeEndpoint{Head: head("bank-b", protocol.LogEndpointRegistered), Record: record("r-v", protocol.EventVerification),
			Change: state.EndpointChange{Op: state.EndpointRegister, Member: "bank-b", URL: "https://hooks.bank-b.example/sparr", Events: []protocol.EventType{protocol.EventFlagPlaced},
				Secret: &webhook.EndpointSecret{Secret: "whsec_c2VjcmV0", CreatedAt: t0}}},
		&state.RecordDelivery{Head: head("bank-b", protocol.LogDelivery), Update: state.DeliveryUpdate{Delivery: d,
			Attempt: webhook.Attempt{At: t0, Latency: 4 * time.Millisecond, Status: 503, Error: "unavailable", RetryAfter: time.Second, URL: "https://hooks.bank-b.example/sparr"},
			Outcome: state.Retrying, Next: t0.Add(5 * time.Second)}},
		&state.PruneFeed{Head: head("hub", protocol.LogFeedPruned), Before: t0.AddDate(0, -1, 0), Limit: 1000},
		&state.PutCheckpoint{Size: 42, Root: tlog.Hash{1, 2, 3}, Note: []byte("hub.example/log\n42\nAQID\n\n— hub.example/log sig\n")},
		&state.Note{Head: head("bank-b", protocol.LogSuspicionDetails)},
		&state.EvaluateTokens{Head: head("bank-b", protocol.LogTokens), Day: "2026-11-21", Count: 100, Limit: 50_000},
		&state.ExpireDetails{Head: head("hub", protocol.LogDetailsExpired), Before: t0.AddDate(-5, 0, 0), Limit: 1000},
		&state.PublishErasures{Head: state.Head{At: t0, Actor: "hub", Entry: state.Entry{Action: protocol.LogErased}}, Before: t0.Truncate(24 * time.Hour)},
		&state.PruneReplays{Before: t0.Add(-25 * time.Hour), Limit: 1000},
		&state.AddCosignature{Size: 41, Witness: "witness.example/w1+d7ec3267", Line: "— witness.example/w1 1+wyZwAAAABnP2lVfGNZ5kKqjYhO2cy6Z3HAfHfxcd6Kc4W7gO5Fc2o+J1Ix0F1o9mbk4/HT+2eNnfv6nRGfiPCXc3V7mX0KCw=="},
		&state.ReplicaChecks{Head: head("bank-b", protocol.LogReplicaCheck), Notices: []*state.AccessNotice{{CheckID: "k-2", FlagID: "f-1", Subject: "email.1.AAAA",
			Origin: "bank-a", Member: "bank-b", Purpose: "credit-application", At: t0, Replica: true, Record: record("r-sc", protocol.EventSubjectChecked)}}},
		&state.DenyCheck{Head: head("bank-a", protocol.LogCheckDenied), Submission: sub, Denial: &state.Denial{CheckID: "k-2", FlagID: "f-1", Subject: "email.1.AAAA",
			Origin: "bank-a", Member: "bank-b", Purpose: "credit-application", At: t0, DeniedAt: t0.Add(time.Minute).Truncate(time.Second),
			Auth:   &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(t0), Level: protocol.LevelHigh, Reference: "auth-1"},
			Record: record("r-cd", protocol.EventCheckDenied)}},
		&state.PutPayee{Head: head("bank-a", protocol.LogPayeeReported), Submission: &sub, Record: record("r-p", protocol.EventPayeeReported),
			Payee: &state.Payee{ID: "p-1", Version: 1, Subject: "iban.1.AAAA", ReportedAt: t0.Truncate(time.Second), ExpiresAt: t0.AddDate(1, 0, 0).Truncate(time.Second),
				Reports: []protocol.PayeeMemberReport{{Member: "bank-a", Customers: 2, Category: protocol.PayeeImpersonation,
					FirstSeen: protocol.NewNumericDate(t0.Add(-time.Hour)), LastSeen: protocol.NewNumericDate(t0)}}, Records: []string{"r-p"}}},
		&state.PutRecall{Head: head("bank-a", protocol.LogRecallRequested), Submission: &sub, Record: record("r-rc", protocol.EventRecallRequested),
			Recall: &state.Recall{ID: "rc-1", Version: 1, From: "bank-a", To: "bank-b", Payee: "iban.1.AAAA", Bank: protocol.BankRef{Country: "SE", BankCode: "500"},
				Amount: protocol.Money{Minor: 4_000_000, Currency: "SEK"}, PaidAt: t0.Add(-10 * time.Minute).Truncate(time.Second), Reference: "A-0042",
				RequestedAt: t0.Truncate(time.Second), Records: []string{"r-rc"}}},
		&state.PutDispute{Head: head("bank-b", protocol.LogDisputeResolved), Submission: &sub,
			Records: []*state.Record{record("r-dr", protocol.EventDisputeResolved), record("r-sr", protocol.EventSuspicionRetracted)},
			Dispute: &state.Dispute{ID: "d-1", Version: 3, Subjects: []string{"email.1.AAAA"}, Suspicion: "s-1", Disputant: "bank-c", Respondent: "bank-a",
				Grounds: protocol.GroundsNotMe, Statement: "I was abroad.", Auth: &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(t0), Level: protocol.LevelHigh, Reference: "auth-1"},
				Status: state.DisputeUpheld, OpenedAt: t0, AckDue: t0.AddDate(0, 0, 7), ResolveDue: t0.AddDate(0, 0, 30), AckedAt: t0, ResolvedAt: t0, Records: []string{"r-do", "r-dr"}},
			Suspicion: suspicionOf(2, api.SuspicionRetracted),
			Erase:     &state.Erase{Records: []string{"r-s"}, Subjects: []string{"email.1.AAAA"}, Actions: []protocol.LogAction{protocol.LogSuspicionDetails}, Basis: "dispute-upheld"}},
		&state.AttestErasure{Head: head("bank-b", protocol.LogErasureAttested), Submission: sub, Member: "bank-b", Records: []string{"r-3", "r-er"}},
		&state.ExpirePayee{Head: head("hub", protocol.LogPayeeExpired), Record: record("r-pe", protocol.EventPayeeExpired),
			Payee: &state.Payee{ID: "p-1", Version: 1, Subject: "iban.1.AAAA", ReportedAt: t0.Truncate(time.Second), ExpiresAt: t0.AddDate(1, 0, 0).Truncate(time.Second),
				Reports: []protocol.PayeeMemberReport{{Member: "bank-a", Customers: 2, Category: protocol.PayeeImpersonation,
					FirstSeen: protocol.NewNumericDate(t0.Add(-time.Hour)), LastSeen: protocol.NewNumericDate(t0)}}, Records: []string{"r-p"}},
			Erase: state.Erase{Records: []string{"r-p"}, Basis: "retention-ended"}},
		&state.ExpireRecall{Head: head("hub", protocol.LogRecallExpired),
			Recall: &state.Recall{ID: "rc-1", Version: 3, From: "bank-a", To: "bank-b", Payee: "iban.1.AAAA", Bank: protocol.BankRef{Country: "SE", BankCode: "500"},
				Amount: protocol.Money{Minor: 4_000_000, Currency: "SEK"}, PaidAt: t0.Add(-10 * time.Minute).Truncate(time.Second), Reference: "A-0042",
				RequestedAt: t0.Truncate(time.Second), OutcomeAt: t0.Add(time.Hour), Outcome: protocol.RecallFrozen, Records: []string{"r-rc"}},
			Erase: state.Erase{Records: []string{"r-rc"}, Basis: "retention-ended"}},
		&state.PutPeer{Head: head("operator", protocol.LogPeerRegistered), Peer: &api.Peer{PeerRequest: api.PeerRequest{ID: "hub-no", Jurisdiction: "NO",
			URL: "https://sparr.example.no", Member: "hub-se", KeyFile: "hub-no.jwk", Token: protocol.TokenPublicKey{Suite: "ristretto255-SHA512", Epoch: 1, Key: []byte{1, 2, 3}},
			Policy: api.PeerPolicy{IdentifierTypes: []protocol.IdentifierType{protocol.TypeNorwegianNumber}}}, KeyID: "kid-1", Source: api.PeerFromAPI, CreatedAt: &t0}},
		&state.RelayEvent{Head: head("hub-no", protocol.LogPeerEvent), Peer: "hub-no", Home: "hub-no",
			Record: &state.Record{ID: "r-n", Type: protocol.EventFlagLifted, Subjects: []string{"fnr.1.AAAA"}, Ref: "f-n", IssuedAt: t0.Truncate(time.Second),
				JWS: "eyJhbGciOiJFZERTQSJ9.e30.c2ln", Peers: []string{"hub-dk"}, Via: []string{"eyJhbGciOiJFZERTQSJ9.e30.dmlh"}},
			Erase: state.Erase{Records: []string{"r-n0"}, Basis: "consent-withdrawn"}},
		&state.PeerCursor{Peer: "hub-no", After: 42},
	}
}

func TestExamplesCoverEveryKind(t *testing.T) {
	var got []state.Kind
	for _, c := range examples() {
		got = append(got, c.Kind())
	}
	if want := state.Kinds(); !slices.Equal(got, want) {
		t.Fatalf("examples are of kinds %v, want one of each of %v", got, want)
	}
}

// TestGoldenEncoding holds every kind's encoding to testdata: the same
// command encodes to the same bytes, in this version and the next.
func TestGoldenEncoding(t *testing.T) {
	var out bytes.Buffer
	for _, c := range examples() {
		b, err := state.Encode(c)
		if err != nil {
			t.Fatalf("%s: %v", c.Kind(), err)
		}
		again, err := state.Encode(c)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s encodes differently the second time", c.Kind())
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	path := filepath.Join("testdata", "commands.jsonl")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("the encoding changed; if on purpose, it is a new EncodingVersion (then run with -update):\n got %s\nwant %s", out.Bytes(), want)
	}
}

// TestDecodeGolden reads every golden encoding back to the command it
// encodes, losing nothing.
func TestDecodeGolden(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "commands.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	want := examples()
	if len(lines) != len(want) {
		t.Fatalf("testdata has %d commands, want %d", len(lines), len(want))
	}
	for i, line := range lines {
		c, err := state.Decode(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if c.Kind() != want[i].Kind() {
			t.Fatalf("line %d: kind %s, want %s", i+1, c.Kind(), want[i].Kind())
		}
		if again, _ := state.Encode(c); !bytes.Equal(again, line) {
			t.Errorf("%s: decoded and encoded again it is\n%s\nnot\n%s", c.Kind(), again, line)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	good, err := state.Encode(examples()[6])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"not JSON", "check", "invalid character"},
		{"empty", "", "EOF"},
		{"another version", strings.Replace(string(good), `"v":1`, `"v":2`, 1), "encoding version 2"},
		{"no version", strings.Replace(string(good), `"v":1,`, ``, 1), "encoding version 0"},
		{"unknown kind", strings.Replace(string(good), `"kind":"add-check"`, `"kind":"launch"`, 1), `unknown kind "launch"`},
		{"unknown field", strings.Replace(string(good), `"tokens":1`, `"tokens":1,"extra":true`, 1), `unknown field "extra"`},
		{"unknown envelope field", strings.Replace(string(good), `"v":1`, `"v":1,"x":0`, 1), `unknown field "x"`},
		{"no command", `{"v":1,"kind":"note"}`, "without its command"},
		{"null command", `{"v":1,"kind":"note","command":null}`, "without its command"},
		{"trailing data", string(good) + "{}", "data after the command"},
		{"trailing brace", string(good) + "}", "data after the command"},
		{"too large", `{"v":1,"kind":"note","command":{"actor":"` + strings.Repeat("a", state.MaxEncodedSize) + `"}}`, "over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := state.Decode([]byte(tc.in))
			if err == nil || !errors.Is(err, state.ErrEncoding) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, %v; want an ErrEncoding saying %q", c, err, tc.want)
			}
		})
	}
}

// FuzzDecode: Decode never panics, and what it accepts encodes to bytes
// that decode to the same encoding.
func FuzzDecode(f *testing.F) {
	for _, c := range examples() {
		b, _ := state.Encode(c)
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"kind":"note","command":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := state.Decode(b)
		if err != nil {
			return
		}
		enc, err := state.Encode(c)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", c.Kind(), err)
		}
		c2, err := state.Decode(enc)
		if err != nil {
			t.Fatalf("the encoding of a decoded %s does not decode: %v", c.Kind(), err)
		}
		if enc2, _ := state.Encode(c2); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s: encoding is not stable:\n%s\n%s", c.Kind(), enc, enc2)
		}
	})
}
