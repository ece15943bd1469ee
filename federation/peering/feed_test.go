package peering_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// FuzzPeerFeed has a peer answer a feed request with arbitrary status,
// body and floor header: Feed returns a page that does not go back, a
// [*peering.CursorExpiredError] with the floor given, or another error,
// and never panics.
func FuzzPeerFeed(f *testing.F) {
	problem := `{"type":"urn:sparr:problem:cursor-expired","title":"Feed cursor older than the retention window","status":410}`
	f.Add(200, `{"events":[{"seq":3,"type":"urn:sparr:event:flag-placed","jws":"a.b.c","via":["d.e.f"]}],"next":3,"more":false}`, "", uint64(0))
	f.Add(200, `{"events":[],"next":1,"more":true}`, "", uint64(2))
	f.Add(410, problem, "7", uint64(2))
	f.Add(410, problem, "", uint64(2))
	f.Add(410, problem, "-1", uint64(2))
	f.Add(404, `{"type":"urn:sparr:problem:not-found","status":404}`, "", uint64(0))
	f.Add(200, `not json`, "", uint64(0))
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, body, floor string, after uint64) {
		if status < 200 || status > 599 {
			return
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if status >= 400 {
				w.Header().Set("Content-Type", protocol.ProblemContentType)
			}
			if floor != "" {
				w.Header().Set(api.FeedFloorHeader, floor)
			}
			w.WriteHeader(status)
			w.Write([]byte(body))
		}))
		defer srv.Close()
		p := &peering.Peer{ID: "hub-no", Jurisdiction: "NO", URL: srv.URL, Member: "hub-se", Key: key}
		page, err := p.Feed(context.Background(), srv.Client(), after, 100, time.Now())
		if expired, ok := errors.AsType[*peering.CursorExpiredError](err); ok {
			if want, perr := strconv.ParseUint(floor, 10, 64); perr != nil || expired.Floor != want || expired.After != after {
				t.Errorf("got %+v for floor %q, after %d", expired, floor, after)
			}
			return
		}
		if err == nil && page.Next < after {
			t.Errorf("got a page going back to %d from %d", page.Next, after)
		}
	})
}
