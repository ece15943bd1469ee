// Package nodemember_test runs the JavaScript member beside it (member.js)
// against a real hub, as an operator and a member would: the member makes
// its key pair, the operator registers its JWK Set, and the member runs.
// The hub's exchange log then must show each step. It needs Node.js and
// the packages of `npm ci` in this directory; .ci/run installs them and sets
// SPARR_REQUIRE_INTEROP so that CI never skips it.
package nodemember_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

const memberID = "bank-js"

func TestNodeMember(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("node_modules", "@cloudflare", "voprf-ts"))
	}
	if err != nil {
		msg := "needs Node.js and (cd docs/examples/node-member && npm ci): " + err.Error()
		if os.Getenv("SPARR_REQUIRE_INTEROP") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	h := hubtest.Start(t, hubtest.Options{Delivery: server.Delivery{
		Schedule: []time.Duration{100 * time.Millisecond, time.Second, time.Second}}})
	keyFile := filepath.Join(t.TempDir(), "member.key.json")

	// The member makes its keys; the operator registers the public set.
	jwks := runNode(ctx, t, node, []string{"MEMBER_KEY=" + keyFile}, "keys")
	if _, err := protocol.ParseKeySet([]byte(jwks)); err != nil {
		t.Fatalf("member.js keys printed %q, not a JWK Set the hub takes: %v", jwks, err)
	}
	if _, err := h.Operator.Client().AddMember(ctx, api.MemberRequest{
		ID: memberID, Name: "Bank JS", Roles: []api.Role{api.RoleFlag, api.RoleCheck}, JWKS: []byte(jwks),
	}); err != nil {
		t.Fatalf("register %s: %v", memberID, err)
	}

	out := runNode(ctx, t, node, []string{
		"SPARR_HUB=" + h.URL, "MEMBER_ID=" + memberID, "MEMBER_KEY=" + keyFile,
		"MEMBER_EMAIL= Anna.Andersson@Example.se ",
	})
	t.Logf("member.js:\n%s", out)

	// The member's token is the hub's POPRF of the canonical address.
	want, err := h.Keys.Token.Token(protocol.TypeEmail, "anna.andersson@example.se")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "token        "+want.String()+"\n") {
		t.Errorf("member.js printed no token %s", want)
	}

	// The hub's side: the member's actions are in the exchange log under its
	// id, in order, and so are the deliveries its receiver accepted (the
	// verification event, and the records of the placement and the lift,
	// by the sequence numbers the hub answered), each logged once the
	// receiver answered 202.
	placedSeq, liftedSeq := seqOf(t, out, "placed"), seqOf(t, out, "lifted")
	wantActions := []string{"endpoint-registered ok", "tokens ok", "flag-placed ok", "check ok", "flag-lifted ok"}
	var actions, deliveries []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		actions, deliveries = nil, nil
		for _, e := range h.LogEntries(t) {
			switch {
			case e.Member != memberID:
			case e.Action == protocol.LogDelivery:
				deliveries = append(deliveries, "event "+attr(e, "event")+" "+e.Result)
			default:
				actions = append(actions, string(e.Action)+" "+e.Result)
			}
		}
		done := len(deliveries) == 3 && slices.Contains(deliveries, "event "+liftedSeq+" ok")
		if done || time.Now().After(deadline) {
			break
		}
	}
	if !slices.Equal(actions, wantActions) {
		t.Errorf("exchange log entries of %s:\n got %q\nwant %q", memberID, actions, wantActions)
	}
	if len(deliveries) != 3 || len(slices.Compact(slices.Sorted(slices.Values(deliveries)))) != 3 ||
		!slices.Contains(deliveries, "event "+placedSeq+" ok") || !slices.Contains(deliveries, "event "+liftedSeq+" ok") {
		t.Errorf("deliveries to %s in the exchange log: got %q, want the verification event's and events %s and %s, each once and ok",
			memberID, deliveries, placedSeq, liftedSeq)
	}
}

// seqOf returns the sequence number member.js printed for a step
// ("placed … (seq 2, log 5)").
func seqOf(t *testing.T, out, step string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + step + ` .*\(seq ([0-9]+), log [0-9]+\)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("member.js printed no %q line with a sequence number", step)
	}
	return m[1]
}

func attr(e *protocol.LogEntry, key string) string {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}

// runNode runs member.js with args and env added to the test's
// environment, and returns what it printed on stdout.
func runNode(ctx context.Context, t *testing.T, node string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{"member.js"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node member.js %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.String()
}
