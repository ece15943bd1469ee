package server_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestClockSkew: a member whose clock runs ahead of the hub's is believed
// within the hub's configured tolerance and refused beyond it.
func TestClockSkew(t *testing.T) {
	for _, tc := range []struct {
		name  string
		skew  time.Duration
		ahead time.Duration
		ok    bool
	}{
		{"default 30s, 90s ahead", 0, 90 * time.Second, false},
		{"default 30s, 10s ahead", 0, 10 * time.Second, true},
		{"2m, 90s ahead", 2 * time.Minute, 90 * time.Second, true},
		// Inside the default tolerance: refused only if NoSkew means none.
		{"none, 10s ahead", protocol.NoSkew, 10 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := hubtest.NewClock(time.Now())
			hub := hubtest.Start(t, hubtest.Options{Clock: clock, Configure: func(c *server.Config) { c.ClockSkew = tc.skew }})
			bank := hub.AddMember(t, "bank-a", api.RoleCheck)
			// The member mints its bearer by a clock ahead of the hub's.
			clock.Advance(tc.ahead)
			tok := bank.Bearer(t)
			clock.Advance(-tc.ahead)
			resp := withBearer(t, hub, http.MethodGet, "/v1/flags/f-1", "Bearer "+tok)
			if tc.ok {
				if resp.Status != http.StatusNotFound {
					t.Errorf("bearer %s ahead with skew %s: got status %d, want 404 (authenticated): %s", tc.ahead, tc.skew, resp.Status, resp.Body)
				}
				return
			}
			if resp.Status != http.StatusUnauthorized {
				t.Errorf("bearer %s ahead with skew %s: got status %d, want 401: %s", tc.ahead, tc.skew, resp.Status, resp.Body)
			}
		})
	}
	hub := hubtest.Start(t, hubtest.Options{})
	if _, err := server.New(server.Config{Store: hub.Store, Keys: hub.Keys, Issuer: hub.URL, ClockSkew: 10 * time.Minute}); err == nil {
		t.Error("ClockSkew 10m: got no error, want one (over protocol.MaxSkew)")
	}
}
