package server_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestManyRotationsKeepTwoSecrets: a member that rotates its endpoint's
// secret again and again within the overlap keeps two secrets, the new one
// and the one it replaced; the answers stay small, and deliveries verify
// under the newest secret (and the one it replaced), never an older one.
func TestManyRotationsKeepTwoSecrets(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, m)
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)

	var secrets []string
	for i := range 50 {
		resp := m.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil)
		mustStatus(t, resp, http.StatusOK)
		var rot api.EndpointResponse
		resp.JSON(t, &rot)
		if n := len(rot.Endpoint.Secrets); n != 2 {
			t.Fatalf("rotation %d: got %d secrets listed, want 2: the new one and the one it replaced", i+1, n)
		}
		if len(resp.Body) > 1024 {
			t.Fatalf("rotation %d: got an answer of %d bytes, want at most 1 KiB", i+1, len(resp.Body))
		}
		secrets = append(secrets, rot.Secret)
	}
	newest, replaced, older := secrets[49], secrets[48], secrets[47]
	r.Trust(t, newest)
	deliveries := inspect(t, hub, r, map[string]string{"newest": newest, "replaced": replaced, "older": older}, false)
	place(t, origin, origin.Tokenize(t, protocol.TypeEmail, "rotated@example.se")[0])
	if d := nextDelivery(t, deliveries); !d.V1["newest"] || !d.V1["replaced"] || d.V1["older"] || !d.V1a {
		t.Errorf("got a delivery signed %+v, want v1 under the newest secret and the one it replaced only, and v1a", d)
	}
	r.Behave(nil)
	r.WaitEvent(t, wait, protocol.EventFlagPlaced)
	if inv := r.Invalid(); len(inv) > 0 {
		t.Errorf("got deliveries refused: %v", inv)
	}
	if e := endpointOf(t, m); e.Failures != 0 || e.Status != api.EndpointActive || len(e.Secrets) != 2 {
		t.Errorf("got the endpoint %s with %d failures and %d secrets, want active, none, and 2", e.Status, e.Failures, len(e.Secrets))
	}
}

// TestSigningFailureIsTheHubs: a delivery the hub cannot sign (here, its
// copy of the member's secret is damaged) is the hub's failure, not the
// receiver's: no attempt is made, the endpoint's failures are not counted
// and it is not paused, the hub logs its own error and counts it apart
// from the receivers' failures. A rotation gives the endpoint a secret the
// hub can sign with, and the delivery goes out.
func TestSigningFailureIsTheHubs(t *testing.T) {
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	}})
	origin := hub.AddMember(t, "bank-origin", api.RoleFlag)
	m := hub.AddMember(t, "bank-b", api.RoleCheck)
	r := hub.NewReceiver(t, m)
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)
	waitEndpoint(t, m, "verified", func(e api.Endpoint) bool { return e.Status == api.EndpointActive })

	hub.Offline(t, func(path string) { damageSecret(t, path, m.ID) })
	requests := r.Requests()
	place(t, origin, origin.Tokenize(t, protocol.TypeEmail, "unsigned@example.se")[0])
	deadline := time.Now().Add(wait)
	for metricValue(t, hub, `sparr_delivery_hub_errors_total{member="bank-b",stage="sign"}`) == 0 {
		if n := r.Requests(); n != requests {
			t.Fatalf("got %d requests at the receiver, want none: the hub cannot sign the delivery", n-requests)
		}
		if e := endpointOf(t, m); e.Failures != 0 || e.DeadLetters != 0 || e.Status != api.EndpointActive {
			t.Fatalf("got the endpoint %s with %d failures, %d dead letters (last error %q); want the hub's failure not counted against it",
				e.Status, e.Failures, e.DeadLetters, e.LastError)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no signing failure counted within %s", wait)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the fast schedule's whole span: a retry would have been made by now
	if e := endpointOf(t, m); e.Failures != 0 || e.Status != api.EndpointActive || e.LastError != "" || e.Backlog != 1 {
		t.Errorf("got the endpoint %s with %d failures, last error %q, backlog %d; want active, none, none, and the delivery queued",
			e.Status, e.Failures, e.LastError, e.Backlog)
	}
	if n := r.Requests(); n != requests {
		t.Errorf("got %d requests at the receiver, want none", n-requests)
	}
	if got := metricValue(t, hub, `sparr_deliveries_total{member="bank-b",outcome="failed"}`); got != 0 {
		t.Errorf("got %v failed deliveries counted, want 0: the receiver did not fail", got)
	}
	if !hasLogLine(logs.String(), "ERROR", "the hub's own failure") {
		t.Errorf("got logs\n%s\nwant an error line saying the hub failed to sign", logs)
	}

	// The delivery goes out as soon as the rotation is applied, before the
	// receiver can learn the new secret: it is kept, and checked after.
	type request struct {
		header http.Header
		body   []byte
	}
	got := make(chan request, 1)
	r.Behave(func(_ int, w http.ResponseWriter, req *http.Request) bool {
		body, _ := io.ReadAll(req.Body)
		got <- request{req.Header.Clone(), body}
		w.WriteHeader(http.StatusAccepted)
		return true
	})
	resp := m.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var rot api.EndpointResponse
	resp.JSON(t, &rot)
	if len(rot.Endpoint.Secrets) != 1 {
		t.Errorf("got %d secrets after the rotation, want the new one only: the damaged one cannot sign", len(rot.Endpoint.Secrets))
	}
	select {
	case req := <-got:
		ws, err := protocol.ParseWebhookSecret(rot.Secret)
		if err != nil {
			t.Fatal(err)
		}
		v := protocol.WebhookVerifier{Secrets: []protocol.WebhookSecret{ws}}
		if err := v.VerifyHeaders(req.header, req.body, time.Now()); err != nil {
			t.Errorf("got the delivery after the rotation not verifying under the new secret: %v", err)
		}
	case <-time.After(wait):
		t.Fatalf("no delivery within %s of the rotation", wait)
	}
	waitEndpoint(t, m, "drained", func(e api.Endpoint) bool { return e.Backlog == 0 && e.Failures == 0 })
}

// damageSecret replaces, in the data file at path, the member's endpoint
// secrets with one the hub cannot sign with.
func damageSecret(t *testing.T, path, member string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("endpoints"))
		var e map[string]any
		if err := json.Unmarshal(b.Get([]byte(member)), &e); err != nil {
			return err
		}
		e["secrets"] = []map[string]any{{"secret": "whsec_damaged", "created_at": time.Now().UTC()}}
		v, err := json.Marshal(e)
		if err != nil {
			return err
		}
		return b.Put([]byte(member), v)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// metricValue returns the value of the hub's metric series named by
// series (name and labels as exposed); a series the hub does not expose
// fails the test, so that a renamed metric or label cannot pass as 0.
func metricValue(t *testing.T, hub *hubtest.Hub, series string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	hub.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				t.Fatalf("metric %s: %q is not a number", series, v)
			}
			return f
		}
	}
	t.Fatalf("the hub exposes no series %s", series)
	return 0
}

// hasLogLine reports whether logs (JSON lines) have a line at level whose
// message contains msg.
func hasLogLine(logs, level, msg string) bool {
	for line := range strings.SplitSeq(logs, "\n") {
		var l struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Level == level && strings.Contains(l.Msg, msg) {
			return true
		}
	}
	return false
}
