package client_test

// The Verifier on its own: answers forged as bytes, records signed with
// keys the test holds, no HTTP.

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
)

// recordToken is the token record(…, id) is about.
func recordToken(id string) protocol.Token {
	tok := protocol.Token{Type: protocol.TypeEmail, Epoch: 1}
	copy(tok.Value[:], id)
	return tok
}

func answer(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type obj = map[string]any

// verifier returns a verifier that trusts key, and a record signed with
// another key.
func verifier(t *testing.T) (v *client.Verifier, key *protocol.SigningKey, stranger []byte) {
	t.Helper()
	key = signingKey(t)
	set := keySet(t, key)
	v = &client.Verifier{Keys: client.NewKeys(client.KeysConfig{Issuer: issuer,
		Source: client.KeySourceFunc(func(context.Context) (*protocol.KeySet, error) { return set, nil })})}
	return v, key, record(t, signingKey(t), issuer, "stranger")
}

// wantErr checks err against want: nil for success, else a sentinel that
// must match, and whether the error must be a *RecordError (evidence: the
// record) or an *AnswerError (evidence: the answer).
func wantErr(t *testing.T, err, want error, evidence string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("got %v, want no error", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("got %v, want %v", err, want)
	}
	var re *client.RecordError
	var ae *client.AnswerError
	switch evidence {
	case "record":
		if !errors.As(err, &re) || re.JWS == "" || !errors.Is(err, client.ErrUntrustedRecord) {
			t.Fatalf("got %T %v, want a *RecordError carrying the record", err, err)
		}
	case "answer":
		if !errors.As(err, &ae) || len(ae.Answer) == 0 || !errors.Is(err, client.ErrInvalidAnswer) {
			t.Fatalf("got %T %v, want an *AnswerError carrying the answer", err, err)
		}
	}
}

func TestVerifierCheck(t *testing.T) {
	ctx := context.Background()
	v, key, stranger := verifier(t)
	c1, c2 := recordToken("c1"), recordToken("c2")
	rec1, rec2 := string(record(t, key, issuer, "c1")), string(record(t, key, issuer, "c2"))
	result := func(tok protocol.Token, flagID string, records ...string) obj {
		return obj{"token": tok.String(), "advice": "verify", "flag": obj{"flag_id": flagID, "kind": "standard", "records": records}}
	}
	for _, tc := range []struct {
		name     string
		tokens   []protocol.Token
		results  []obj
		want     error
		evidence string
	}{
		{"good", []protocol.Token{c1, c2}, []obj{result(c1, "flag-c1", rec1), result(c2, "flag-c2", rec2)}, nil, ""},
		{"no flag", []protocol.Token{c1}, []obj{{"token": c1.String(), "advice": "none"}}, nil, ""},
		{"another token's record", []protocol.Token{c1}, []obj{result(c1, "flag-c2", rec2)}, client.ErrWrongSubject, "record"},
		{"another flag's record", []protocol.Token{c1}, []obj{result(c1, "flag-c9", rec1)}, client.ErrWrongObject, "record"},
		{"record not from the hub", []protocol.Token{c1}, []obj{result(c1, "flag-stranger", string(stranger))}, protocol.ErrUnknownKey, "record"},
		{"results swapped", []protocol.Token{c1, c2}, []obj{result(c2, "flag-c2", rec2), result(c1, "flag-c1", rec1)}, client.ErrWrongResults, "answer"},
		{"a result short", []protocol.Token{c1, c2}, []obj{result(c1, "flag-c1", rec1)}, client.ErrWrongResults, "answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := v.Check(ctx, tc.tokens, answer(t, obj{"check_id": "chk-1", "results": tc.results, "log_index": 7}))
			wantErr(t, err, tc.want, tc.evidence)
			if tc.want != nil {
				if res != nil {
					t.Errorf("got a result %+v with the error, want none", res)
				}
				return
			}
			if res.ID != "chk-1" || res.LogIndex != 7 || len(res.Results) != len(tc.tokens) {
				t.Fatalf("got %+v, want check chk-1 at log index 7 with %d results", res, len(tc.tokens))
			}
			for i, r := range res.Results {
				if wantFlag := tc.results[i]["flag"] != nil; (r.Flag != nil) != wantFlag {
					t.Errorf("result %d: got flag %+v, want a flag: %t", i, r.Flag, wantFlag)
				}
				if r.Token != tc.tokens[i] || (r.Flag != nil && (len(r.Flag.Records) != 1 || "flag-"+r.Flag.Records[0].ID != r.Flag.ID)) {
					t.Errorf("result %d: got %+v, want the token's verified flag record", i, r)
				}
			}
		})
	}
	_, err := v.Check(ctx, []protocol.Token{c1}, []byte(`{"results": "none"}`))
	wantErr(t, err, client.ErrInvalidAnswer, "answer")
}

func TestVerifierWrite(t *testing.T) {
	ctx := context.Background()
	v, key, stranger := verifier(t)
	rec := string(record(t, key, issuer, "w1")) // txn "txn-w1"
	for _, tc := range []struct {
		name     string
		id       string
		record   string
		want     error
		evidence string
	}{
		{"good", "txn-w1", rec, nil, ""},
		{"existing, no record", "txn-w2", "", nil, ""},
		{"another submission's record", "txn-w2", rec, client.ErrWrongSubmission, "record"},
		{"record not from the hub", "txn-stranger", string(stranger), protocol.ErrUnknownKey, "record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &client.Submission{ID: tc.id, Path: "/v1/flags"}
			res, err := v.Write(ctx, s, answer(t, obj{"flag": obj{"flag_id": "flag-w1"}, "record": tc.record, "seq": 12, "log_index": 30}))
			wantErr(t, err, tc.want, tc.evidence)
			// The write happened whatever the record: the result says what
			// the hub answered, with the record only if it fits.
			if res == nil || res.SubmissionID != tc.id || res.Seq != 12 || res.LogIndex != 30 || res.RecordJWS != tc.record || res.Flag.ID != "flag-w1" {
				t.Fatalf("got %+v, want the hub's answer for submission %s", res, tc.id)
			}
			if wantRecord := tc.want == nil && tc.record != ""; (res.Record != nil) != wantRecord {
				t.Errorf("got record %v, want one: %v", res.Record, wantRecord)
			}
		})
	}
	_, err := v.Write(ctx, &client.Submission{ID: "x", Path: "/v1/flags"}, []byte("<html>"))
	wantErr(t, err, client.ErrInvalidAnswer, "answer")
}

func TestVerifierFeed(t *testing.T) {
	ctx := context.Background()
	v, key, _ := verifier(t)
	placed := protocol.EventFlagPlaced
	ev := func(seq uint64, typ protocol.EventType, id string) obj {
		return obj{"seq": seq, "type": typ, "jws": string(record(t, key, issuer, id))}
	}
	for _, tc := range []struct {
		name     string
		after    uint64
		events   []obj
		next     uint64
		want     error
		evidence string
	}{
		{"good", 4, []obj{ev(5, placed, "f5"), ev(9, placed, "f9")}, 12, nil, ""},
		{"empty, next past the cursor", 4, nil, 8, nil, ""},
		{"sequence going backwards", 4, []obj{ev(9, placed, "f9"), ev(5, placed, "f5")}, 12, client.ErrOutOfOrder, "answer"},
		{"an event repeated", 4, []obj{ev(5, placed, "f5"), ev(5, placed, "f5")}, 12, client.ErrOutOfOrder, "answer"},
		{"an event at the cursor", 5, []obj{ev(5, placed, "f5")}, 12, client.ErrOutOfOrder, "answer"},
		{"next before the last event", 4, []obj{ev(5, placed, "f5"), ev(9, placed, "f9")}, 7, client.ErrOutOfOrder, "answer"},
		{"another type than announced", 4, []obj{ev(5, placed, "f5"), ev(9, protocol.EventFlagLifted, "f9")}, 12, client.ErrWrongType, "record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, err := v.Feed(ctx, tc.after, answer(t, obj{"events": tc.events, "next": tc.next, "more": false}))
			wantErr(t, err, tc.want, tc.evidence)
			if tc.want != nil {
				return
			}
			if page.Next != tc.next || len(page.Events) != len(tc.events) {
				t.Fatalf("got %d events, next %d; want %d events, next %d", len(page.Events), page.Next, len(tc.events), tc.next)
			}
			for i, e := range page.Events {
				if tc.events[i]["seq"] != any(e.Seq) || e.Record == nil || e.Type != placed {
					t.Errorf("event %d: got seq %d %s, want seq %v, verified", i, e.Seq, e.Type, tc.events[i]["seq"])
				}
			}
		})
	}
}

func TestVerifierRecordAndDetails(t *testing.T) {
	ctx := context.Background()
	v, key, _ := verifier(t)
	rec := string(record(t, key, issuer, "r1"))
	e, err := v.Record(ctx, "r1", answer(t, obj{"id": "r1", "seq": 3, "type": protocol.EventFlagPlaced, "jws": rec}))
	if err != nil || e.Seq != 3 || e.Record.ID != "r1" {
		t.Errorf("record r1: got %+v, %v; want it at seq 3", e, err)
	}
	_, err = v.Record(ctx, "r2", answer(t, obj{"id": "r2", "seq": 3, "type": protocol.EventFlagPlaced, "jws": rec}))
	wantErr(t, err, client.ErrWrongObject, "record")
	_, err = v.Record(ctx, "r1", answer(t, obj{"id": "r1", "seq": 3, "type": protocol.EventSuspicionReported, "jws": rec}))
	wantErr(t, err, client.ErrWrongType, "record")
	// A suspicion's details that hold a flag's record.
	_, err = v.SuspicionDetails(ctx, "susp-1", answer(t, obj{"suspicion": obj{"suspicion_id": "susp-1"}, "records": []string{rec}}))
	wantErr(t, err, client.ErrWrongObject, "record")
}
