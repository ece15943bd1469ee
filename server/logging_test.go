package server_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// logBuffer collects a hub's JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// loggingHub starts a hub whose logs go to the returned buffer.
func loggingHub(t *testing.T) (*hubtest.Hub, *logBuffer) {
	logs := new(logBuffer)
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}})
	return hub, logs
}

// handle passes secret on as an argument, so that a stack trace with
// argument values would show it.
//
//go:noinline
func handle(secret string, n int) { panic(fmt.Errorf("no flag for %s (%d)", secret, n)) }

// TestPanicLogHoldsNoRequestData: a handler's panic is answered with a 500
// problem and logged with the panic's type and the functions on the stack,
// not the panic's value nor the stack's arguments, which may hold what the
// request carried.
func TestPanicLogHoldsNoRequestData(t *testing.T) {
	hub, logs := loggingHub(t)
	const secret = "pnr.1.SECRET-TOKEN-FROM-THE-REQUEST"
	srv := httptest.NewServer(hub.WithMiddleware("/boom", func(c *gin.Context) { handle(secret, 424242) }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("got status %d, want 500", resp.StatusCode)
	}
	line := ""
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "panic serving request") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("got logs %s, want a line about the panic", logs)
	}
	for _, leak := range []string{secret, "SECRET", "424242", "(0x", "no flag for"} {
		if strings.Contains(line, leak) {
			t.Errorf("got panic log %s, want it without %q", line, leak)
		}
	}
	for _, want := range []string{`"panic_type":"*errors.errorString"`, "server_test.handle", "logging_test.go:"} {
		if !strings.Contains(line, want) {
			t.Errorf("got panic log %s, want it to name %s", line, want)
		}
	}
	// The request is logged (and counted) as the 500 it was answered with.
	if !strings.Contains(logs.String(), `"msg":"request"`) || !strings.Contains(logs.String(), `"status":500`) {
		t.Errorf("got logs %s, want the request's own line with status 500", logs)
	}
}

// TestKeyFetchLogShowsNoQuery: when a member's key set cannot be fetched,
// the log names its URL by scheme, host and path only: a query string may
// carry an access token.
func TestKeyFetchLogShowsNoQuery(t *testing.T) {
	hub, logs := loggingHub(t)
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: the fetch fails at once.
	const jwksURL = "http://127.0.0.1:1/keys/jwks.json?access_token=SECRET-123"
	resp := hub.Operator.JSON(t, http.MethodPost, "/v1/admin/members", map[string]any{
		"id": "bank-u", "name": "Bank U", "roles": []api.Role{api.RoleCheck}, "jwks_url": jwksURL})
	mustStatus(t, resp, http.StatusCreated)
	unavailable := hub.Member("bank-u", key).Do(t, http.MethodGet, "/v1/flags/f-1", "", nil)
	wantProblem(t, unavailable, protocol.ProblemUnavailable)
	if unavailable.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After: want one, so a member knows when to try again")
	}

	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "resolving a member key failed") {
			line = l
		}
	}
	if !strings.Contains(line, "http://127.0.0.1:1/keys/jwks.json") {
		t.Errorf("got log line %q, want it to name the key set's scheme, host and path", line)
	}
	if strings.Contains(logs.String(), "SECRET-123") || strings.Contains(logs.String(), "access_token") {
		t.Errorf("got logs %s, want no line with the key set's query string", logs)
	}
}
