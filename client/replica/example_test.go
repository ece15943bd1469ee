package replica_test

import (
	"context"
	"fmt"
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

// ExampleReplica_Check answers from a replica as the clock moves through a
// thaw window and past the flag's expiry: the answer changes when it is
// asked, before any record about it arrives. Each check is reported to the
// hub, which logs it as it logs an online check.
func ExampleReplica_Check() {
	t := &exampleT{}
	defer t.done()
	clock := hubtest.NewClock(time.Now().Truncate(time.Second))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	keyA := hub.AddMember(t, "bank-a", api.RoleFlag).Key
	keyB := hub.AddMember(t, "bank-b", api.RoleCheck).Key
	ctx := context.Background()
	bankA, _ := client.New(client.Config{HubURL: hub.URL, MemberID: "bank-a", Key: keyA, Now: clock.Now})
	bankB, _ := client.New(client.Config{HubURL: hub.URL, MemberID: "bank-b", Key: keyB, Now: clock.Now})

	// Bank A places a flag for three hours, thawed from the first hour's
	// end for thirty minutes.
	toks, _ := bankA.Tokenize(ctx, protocol.TypeEmail, "consumer@example.se")
	start := clock.Now()
	placed, err := bankA.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: toks[0], ExpiresAt: start.Add(3 * time.Hour), Consent: &protocol.Consent{
		Collection: protocol.ConsentCollection{Method: "web", At: protocol.NewNumericDate(start)},
		Notice:     "v3", ExpiresAt: protocol.NewNumericDate(start.AddDate(1, 0, 0)),
		Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "login-1"},
	}})
	if err != nil {
		panic(err)
	}
	if _, err := bankA.ThawFlag(ctx, placed.Flag.ID, start.Add(time.Hour), start.Add(90*time.Minute)); err != nil {
		panic(err)
	}

	// Bank B's replica reads it all from the hub once.
	rep, err := replica.Open(filepath.Join(t.TempDir(), "bank-b.db"), replica.Config{Client: bankB, Now: clock.Now})
	if err != nil {
		panic(err)
	}
	defer rep.Close()
	if err := rep.Sync(ctx); err != nil {
		panic(err)
	}
	for _, at := range []time.Duration{0, 70 * time.Minute, 100 * time.Minute, 200 * time.Minute} {
		clock.Advance(at - clock.Now().Sub(start))
		a := rep.Check(api.PurposeCreditApplication, toks[0])
		fmt.Printf("after %3s: %-6s thawed=%v flag held=%v\n", at, a, a.Thawed, a.Flag != nil)
	}
	// Run reports every few seconds; one who closes flushes first.
	if err := rep.Flush(ctx); err != nil {
		panic(err)
	}
	fmt.Println("checks reported to the hub:", rep.Stats().ChecksReported)
	// Output:
	// after  0s: verify thawed=false flag held=true
	// after 1h10m0s: none   thawed=true flag held=true
	// after 1h40m0s: verify thawed=false flag held=true
	// after 3h20m0s: none   thawed=false flag held=false
	// checks reported to the hub: 4
}

// exampleT lets an Example start a test hub with hubtest, which wants a
// testing.TB: Examples have none. Only the methods hubtest calls are
// implemented; a failure panics, which fails the Example.
type exampleT struct {
	testing.TB
	dirs     []string
	cleanups []func()
}

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
