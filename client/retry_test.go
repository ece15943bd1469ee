package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestRetriesOnlyWhereSafe puts a proxy between a member and a real hub
// that loses or spoils one answer: a call the hub answers alike however
// often it gets it is sent again; one that acts anew each time is sent
// again only when the hub certainly did not get it.
func TestRetriesOnlyWhereSafe(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	a := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleSuspicion))
	px := startProxy(t, hub)
	c := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleFlag, api.RoleCheck), func(cfg *client.Config) { cfg.HubURL = px.URL })
	toks, err := a.Tokenize(ctx, protocol.TypeEmail, "safe@example.se", "other@example.se")
	if err != nil {
		t.Fatal(err)
	}
	flag := place(t, a, hub.Now(), toks[0])
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K3", Date: hub.Now().Format("2006-01-02")}
	susp, err := a.ReportSuspicion(ctx, client.ReportSuspicionRequest{Subjects: toks[:1], Category: protocol.CategoryOther, PoliceReport: report})
	if err != nil {
		t.Fatal(err)
	}
	check, err := c.Check(ctx, api.PurposeOther, toks[0])
	if err != nil {
		t.Fatal(err)
	}
	url, _ := startReceiver(t, c, newEvents().handle)
	if _, _, err := c.RegisterEndpoint(ctx, url); err != nil {
		t.Fatal(err)
	}

	checkOp, outcomeOp, replicaOp := "POST /v1/check", "POST /v1/checks/"+check.ID+"/outcome", "POST /v1/checks/replica"
	replicaChecks := []api.ReplicaCheck{{Token: toks[0].String(), Purpose: api.PurposePayment, At: hub.Now()}}
	for _, tc := range []struct {
		name string
		op   string
		f    fault
		call func() error
		// sent is how many requests of op the proxy sees; ok whether the
		// call succeeds.
		sent int
		ok   bool
	}{
		{"a write whose answer is lost", "POST /v1/flags", lose, func() error {
			_, err := c.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: toks[1], Consent: consent(hub.Now())})
			return err
		}, 2, true},
		{"a token batch whose answer is lost", "POST /v1/tokens", lose, func() error {
			_, err := c.Tokenize(ctx, protocol.TypeEmail, "fresh@example.se")
			return err
		}, 2, true},
		{"a read answered 502", "GET /v1/flags/" + flag.Flag.ID, badGateway, func() error {
			_, err := c.Flag(ctx, flag.Flag.ID)
			return err
		}, 2, true},
		{"a check whose answer is lost", checkOp, lose, func() error {
			_, err := c.Check(ctx, api.PurposeOther, toks[0])
			return err
		}, 1, false},
		{"a check answered 502", checkOp, badGateway, func() error {
			_, err := c.Check(ctx, api.PurposeOther, toks[0])
			if !errors.Is(err, client.ErrUnavailable) {
				return fmt.Errorf("got %v, want ErrUnavailable", err)
			}
			return err
		}, 1, false},
		{"a check answered 503 with Retry-After, unseen by the hub", checkOp, busy, func() error {
			_, err := c.Check(ctx, api.PurposeOther, toks[0])
			return err
		}, 2, true},
		{"a check answered 429, unseen by the hub", checkOp, limited, func() error {
			_, err := c.Check(ctx, api.PurposeOther, toks[0])
			return err
		}, 2, true},
		{"replica checks whose answer is lost", replicaOp, lose, func() error {
			_, err := c.ReportReplicaChecks(ctx, replicaChecks)
			return err
		}, 1, false},
		{"replica checks answered 429, unseen by the hub", replicaOp, limited, func() error {
			_, err := c.ReportReplicaChecks(ctx, replicaChecks)
			return err
		}, 2, true},
		{"suspicion details whose answer is lost", "POST /v1/suspicions/" + susp.Suspicion.ID + "/details", lose, func() error {
			_, err := c.SuspicionDetails(ctx, susp.Suspicion.ID, api.PurposeOther, "a test of what is sent again and what is not")
			return err
		}, 1, false},
		{"an outcome whose answer is lost", outcomeOp, lose, func() error {
			_, err := c.ReportOutcome(ctx, check.ID, api.OutcomeVerified)
			if errors.Is(err, client.ErrStateConflict) {
				return fmt.Errorf("got %v: sent again and refused as a second report", err)
			}
			return err
		}, 1, false},
		{"registering whose answer is lost", "PUT /v1/members/self/endpoint", lose, func() error {
			secret, _, err := c.RegisterEndpoint(ctx, url)
			if err == nil && secret.Encode() == (protocol.WebhookSecret{}).Encode() {
				return errors.New("sent again, and succeeded without the secret")
			}
			return err
		}, 1, false},
		{"a rotation whose answer is lost", "POST /v1/members/self/endpoint/secret", lose, func() error {
			_, _, err := c.RotateSecret(ctx)
			return err
		}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := px.count(tc.op)
			px.spoilNext(tc.op, tc.f)
			err := tc.call()
			px.set(nil)
			if sent := px.count(tc.op) - before; sent != tc.sent || (err == nil) != tc.ok {
				t.Errorf("got %d requests and error %v; want %d requests and success %v", sent, err, tc.sent, tc.ok)
			}
		})
	}
	// The outcome whose answer was lost was recorded: the hub refuses a
	// second.
	if _, err := c.ReportOutcome(ctx, check.ID, api.OutcomeVerified); !errors.Is(err, client.ErrStateConflict) {
		t.Errorf("reporting the outcome again: got %v, want ErrStateConflict", err)
	}
}

// TestBearerErrorNotRetried: when the client cannot mint a bearer token
// (here: the hub's configuration cannot be read), the request fails after
// the configuration's own retries, without retrying them all again per
// attempt of the request.
func TestBearerErrorNotRetried(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	px := startProxy(t, hub)
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleCheck), func(cfg *client.Config) { cfg.HubURL = px.URL })
	const discovery = "GET /.well-known/sparr-configuration"
	px.set(func(op string, _ int) fault {
		if op == discovery {
			return busy
		}
		return pass
	})
	_, err := c.Check(context.Background(), api.PurposeOther, recordToken("x"))
	if !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("got %v, want ErrUnavailable", err)
	}
	if got, want := px.count(discovery), 4; got != want {
		t.Errorf("got %d requests for the configuration, want %d (Retry.Attempts)", got, want)
	}
	if n := px.count("POST /v1/check"); n != 0 {
		t.Errorf("got %d checks sent, want none", n)
	}
}

// TestDiscoveryIsFollowed: the client fetches the hub's keys from the
// jwks_uri of its configuration, and sends token batches no larger than
// its max_tokens_per_request.
func TestDiscoveryIsFollowed(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Limits: server.Limits{Tokens: server.Rate{PerSecond: 100, Burst: 100}}})
	px := startProxy(t, hub)
	px.mu.Lock()
	px.routes["/keys/hub.jwks"] = "/.well-known/jwks.json"
	px.edit = func(op string, body []byte) []byte {
		if op != "GET /.well-known/sparr-configuration" {
			return body
		}
		var conf map[string]any
		if err := json.Unmarshal(body, &conf); err != nil {
			return body
		}
		conf["jwks_uri"] = px.URL + "/keys/hub.jwks"
		conf["policy"].(map[string]any)["max_tokens_per_request"] = 40
		b, _ := json.Marshal(conf)
		return b
	}
	px.mu.Unlock()
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag), func(cfg *client.Config) { cfg.HubURL = px.URL })
	var emails []string
	for i := range 100 {
		emails = append(emails, fmt.Sprintf("batch%d@example.se", i))
	}
	toks, err := c.Tokenize(ctx, protocol.TypeEmail, emails...)
	if err != nil {
		t.Fatal(err)
	}
	if n := px.count("POST /v1/tokens"); n != 3 {
		t.Errorf("100 identifiers at a hub that takes 40 a request: got %d requests, want 3", n)
	}
	place(t, c, hub.Now(), toks[0]) // verifies the record: fetches the keys
	if got, fixed := px.count("GET /keys/hub.jwks"), px.count("GET /.well-known/jwks.json"); got != 1 || fixed != 0 {
		t.Errorf("got %d fetches from the jwks_uri and %d from the usual path, want 1 and 0", got, fixed)
	}
}

// TestProblemCountsAttempts: a read the hub never gets to answer (503 from
// a proxy, with Retry-After: 0 each time) is sent Retry.Attempts times; the
// Problem says so, and its Retry-After is the one the answer named, zero.
func TestProblemCountsAttempts(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	px := startProxy(t, hub)
	c := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck), func(cfg *client.Config) {
		cfg.HubURL = px.URL
		cfg.Retry = client.Retry{Attempts: 3, Backoff: time.Millisecond}
	})
	op := "GET /v1/flags/f-1"
	px.set(func(o string, _ int) fault {
		if o == op {
			return busy
		}
		return pass
	})
	_, err := c.Flag(context.Background(), "f-1")
	var p *client.Problem
	if !errors.As(err, &p) || p.Attempts != 3 || p.StatusCode() != http.StatusServiceUnavailable || p.RetryAfter != 0 {
		t.Fatalf("got %v (%+v), want a 503 Problem after 3 attempts", err, p)
	}
	if !strings.Contains(p.Error(), "(after 3 attempts)") {
		t.Errorf("the error %q does not say how many attempts were made", p.Error())
	}
	if n := px.count(op); n != 3 {
		t.Errorf("the proxy saw %d requests, want 3", n)
	}
}
