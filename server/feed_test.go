package server_test

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestFeedCursorPastTheLatest: a cursor at or past the hub's latest
// sequence number, up to the largest one, answers an empty page whose next
// is that cursor; the feed never starts again from the beginning.
func TestFeedCursorPastTheLatest(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	for _, tok := range bank.Tokenize(t, protocol.TypeEmail, "anna@example.se", "bo@example.se") {
		place(t, bank, tok)
	}
	latest, err := hub.Store.Sequence()
	if err != nil {
		t.Fatal(err)
	}
	for _, after := range []uint64{latest, latest + 1, math.MaxUint64 - 1, math.MaxUint64} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			resp := bank.Do(t, http.MethodGet, fmt.Sprintf("/v1/events?after=%d", after), "", nil)
			mustStatus(t, resp, http.StatusOK)
			var page api.FeedPage
			resp.JSON(t, &page)
			if len(page.Events) != 0 || page.Next != after || page.More {
				t.Errorf("got %d events, next %d, more %v; want none, next %d, more false", len(page.Events), page.Next, page.More, after)
			}
		})
	}
}

// TestAuditCursorPastTheLatest: GET /v1/audit/entries with after at or
// past the last entry's index, up to the largest, answers no entries; it
// never wraps round to the first.
func TestAuditCursorPastTheLatest(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	reg := hub.AddMember(t, "regulator", api.RoleRegulator)
	for _, after := range []uint64{1 << 40, math.MaxUint64 - 1, math.MaxUint64} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			resp := reg.Do(t, http.MethodGet, fmt.Sprintf("/v1/audit/entries?after=%d", after), "", nil)
			mustStatus(t, resp, http.StatusOK)
			var page api.AuditPage
			resp.JSON(t, &page)
			if len(page.Entries) != 0 || page.Next != nil {
				t.Errorf("got %d entries (first %+v), next %v; want none", len(page.Entries), page.Entries, page.Next)
			}
		})
	}
}

// TestAuditStatsRangeIsBounded: GET /v1/audit/stats counts at most
// Config.MaxStatsEntries entries in one request; a range over more is
// refused with a problem that says how to ask instead, and a range within
// it is counted.
func TestAuditStatsRangeIsBounded(t *testing.T) {
	clock := hubtest.NewClock(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC))
	hub := hubtest.Start(t, hubtest.Options{Clock: clock, Configure: func(c *server.Config) { c.MaxStatsEntries = 5 }})
	reg := hub.AddMember(t, "regulator", api.RoleRegulator)
	clock.Advance(time.Hour)
	from := clock.Now()
	for i := range 8 {
		hub.AddMember(t, fmt.Sprintf("bank-%d", i), api.RoleCheck)
		clock.Advance(time.Minute)
	}
	resp := reg.Do(t, http.MethodGet, "/v1/audit/stats", "", nil)
	conforms(t, "GET /v1/audit/stats", resp)
	if p := wantProblem(t, resp, protocol.ProblemValidation); !strings.Contains(p.Detail, "at most 5") || !strings.Contains(p.Detail, "from and to") {
		t.Errorf("got detail %q, want it to say at most 5 entries are counted, and to narrow from and to", p.Detail)
	}
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {from.Add(4 * time.Minute).Format(time.RFC3339)}}
	resp = reg.Do(t, http.MethodGet, "/v1/audit/stats?"+q.Encode(), "", nil)
	mustStatus(t, resp, http.StatusOK)
	var st api.AuditStats
	resp.JSON(t, &st)
	if st.Total != 4 || st.Actions[string(protocol.LogMemberAdded)] != 4 {
		t.Errorf("got %+v, want the 4 members added in the range", st)
	}
}
