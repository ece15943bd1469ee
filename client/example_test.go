package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/client/replica"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// Example is a member integration end to end, against a real hub on
// loopback: Bank A places a flag with the consumer's consent; Bank B
// receives it by webhook into its replica and checks a credit applicant,
// locally (a check its replica reports to the hub) and at the hub; the
// consumer lifts the flag and Bank B forgets it.
func Example() {
	t := newExampleT()
	defer t.done()
	hub := hubtest.Start(t, hubtest.Options{})
	keyA := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck).Key
	keyB := hub.AddMember(t, "bank-b", api.RoleCheck).Key
	ctx := context.Background()

	// Each bank connects with the id and key the operator registered.
	bankA, err := client.New(client.Config{HubURL: hub.URL, MemberID: "bank-a", Key: keyA})
	if err != nil {
		panic(err)
	}
	bankB, err := client.New(client.Config{HubURL: hub.URL, MemberID: "bank-b", Key: keyB})
	if err != nil {
		panic(err)
	}

	// Bank B keeps a replica, fed by its webhook receiver.
	rep, err := replica.Open(filepath.Join(t.TempDir(), "bank-b.db"), replica.Config{Client: bankB})
	if err != nil {
		panic(err)
	}
	defer rep.Close()
	if err := rep.Sync(ctx); err != nil {
		panic(err)
	}
	rcv, err := client.NewReceiver(client.ReceiverConfig{Client: bankB, Handle: rep.Apply})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	secret, _, err := bankB.RegisterEndpoint(ctx, srv.URL)
	if err != nil {
		panic(err)
	}
	rcv.SetSecrets(secret)

	// A consumer asks Bank A for protection, after logging in with BankID.
	toks, err := bankA.Tokenize(ctx, protocol.TypePersonalNumber, "19090527+1474")
	if err != nil {
		panic(err)
	}
	now := time.Now()
	placed, err := bankA.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: toks[0], Consent: &protocol.Consent{
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now)},
		Notice:     "https://bank-a.example/privacy/sparr",
		ExpiresAt:  protocol.NewNumericDate(now.AddDate(1, 1, 0)),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "login-4711"},
	}})
	if err != nil {
		panic(err)
	}
	fmt.Println("placed:", placed.Record.Event.EventType().Short(), placed.Flag.Status)

	// Someone applies for credit at Bank B with the same personnummer,
	// written the short way.
	applicant, err := bankB.Tokenize(ctx, protocol.TypePersonalNumber, "090527+1474")
	if err != nil {
		panic(err)
	}
	waitUntil(func() bool { return rep.Lookup(applicant[0]).Advice == api.AdviceVerify })
	fmt.Println("Bank B's replica:", rep.Check(api.PurposeCreditApplication, applicant[0]))
	res, err := bankB.Check(ctx, api.PurposeCreditApplication, applicant[0])
	if err != nil {
		panic(err)
	}
	fmt.Println("the hub:", res.Results[0].Advice)
	if _, err := bankB.ReportOutcome(ctx, res.ID, api.OutcomeNotVerified); err != nil {
		panic(err)
	}
	// The replica's check goes to the hub's log too (rep.Run reports every
	// few seconds; Flush reports now).
	if err := rep.Flush(ctx); err != nil {
		panic(err)
	}
	fmt.Println("replica checks reported:", rep.Stats().ChecksReported)

	// The consumer lifts the flag; every member forgets it.
	if _, err := bankA.LiftFlag(ctx, placed.Flag.ID); err != nil {
		panic(err)
	}
	waitUntil(func() bool { return rep.Lookup(applicant[0]).Advice == api.AdviceNone })
	fmt.Println("after the lift:", rep.Lookup(applicant[0]), rep.Stats().Flags)

	// Lifting it again is refused: the flag has ended.
	_, err = bankA.LiftFlag(ctx, placed.Flag.ID)
	var p *client.Problem
	fmt.Println(errors.Is(err, client.ErrStateConflict), errors.As(err, &p) && p.Status == http.StatusConflict)

	// Output:
	// placed: flag-placed active
	// Bank B's replica: verify
	// the hub: verify
	// replica checks reported: 1
	// after the lift: none 0
	// true true
}

// ExampleClient_Tokenize shows that an identifier error says what is wrong
// without repeating the identifier.
func ExampleClient_Tokenize() {
	t := newExampleT()
	defer t.done()
	hub := hubtest.Start(t, hubtest.Options{})
	key := hub.AddMember(t, "bank-a", api.RoleCheck).Key
	c, err := client.New(client.Config{HubURL: hub.URL, MemberID: "bank-a", Key: key})
	if err != nil {
		panic(err)
	}
	_, err = c.Tokenize(context.Background(), protocol.TypePersonalNumber, "19090527+1475")
	var ie *protocol.IdentifierError
	fmt.Println(errors.As(err, &ie), protocol.IdentifierErrorCode(err))
	fmt.Println(err)
	// Output:
	// true check-digit
	// tokenize pnr identifier [0]: pnr: check digit is 5, expected 4
}

// ExampleClient_AddMember is the operator registering a regulator, and the
// regulator verifying the exchange log against the log key the operator
// gave it, as sparr log verify does.
func ExampleClient_AddMember() {
	t := newExampleT()
	defer t.done()
	hub := hubtest.Start(t, hubtest.Options{})
	ctx := context.Background()
	op, err := client.New(client.Config{HubURL: hub.URL, MemberID: hub.Operator.ID, Key: hub.Operator.Key})
	if err != nil {
		panic(err)
	}

	// The regulator made a key and gave the operator its public half.
	regKey, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		panic(err)
	}
	set, err := protocol.NewKeySet(regKey.Public())
	if err != nil {
		panic(err)
	}
	jwks, err := set.MarshalJSON()
	if err != nil {
		panic(err)
	}
	added, err := op.AddMember(ctx, api.MemberRequest{ID: "fi", Name: "Finansinspektionen", Roles: []api.Role{api.RoleRegulator}, JWKS: jwks})
	if err != nil {
		panic(err)
	}
	fmt.Println("added:", added.Member.ID, added.Member.Roles, added.Member.Status)

	// The regulator holds the hub's log to a key it got out of band.
	reg, err := client.New(client.Config{HubURL: hub.URL, MemberID: "fi", Key: regKey})
	if err != nil {
		panic(err)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		panic(err)
	}
	logKey, err := protocol.NewLogVerifier(hub.Keys.LogVerifier)
	if err != nil {
		panic(err)
	}
	_, report, err := (&protocol.LogAuditor{Fetcher: reg.Log(), Key: logKey}).Verify(ctx, nil)
	if err != nil {
		panic(err)
	}
	// The log holds the registration of the operator, at the hub's first
	// start, and of the regulator.
	fmt.Println("verified, members added:", report.Actions[protocol.LogMemberAdded])
	// Output:
	// added: fi [regulator] active
	// verified, members added: 2
}

// waitUntil polls cond for up to ten seconds.
func waitUntil(cond func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// exampleT lets an Example start a test hub with hubtest, which wants a
// testing.TB: Examples have none. Only the methods hubtest calls are
// implemented; a failure panics, which fails the Example.
type exampleT struct {
	testing.TB
	dirs     []string
	cleanups []func()
}

func newExampleT() *exampleT { return &exampleT{} }

func (t *exampleT) Helper() {}

func (t *exampleT) TempDir() string {
	d, err := os.MkdirTemp("", "sparr-example-")
	if err != nil {
		panic(err)
	}
	t.dirs = append(t.dirs, d)
	return d
}

func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Logf(string, ...any)               {}

// done runs the cleanups, last first, and removes the directories.
func (t *exampleT) done() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	for _, d := range t.dirs {
		os.RemoveAll(d)
	}
}
