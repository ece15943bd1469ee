package server_test

import (
	"fmt"
	"math"
	"net/http"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
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
