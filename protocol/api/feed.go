package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// MaxFeedPage is the most events one feed request returns.
const MaxFeedPage = 1000

// A FeedEvent is one signed record in the feed or a snapshot, with its
// place in the hub's sequence.
type FeedEvent struct {
	Seq  uint64             `json:"seq"`
	Type protocol.EventType `json:"type"`
	JWS  string             `json:"jws"`
	// Via is the via chain of a record relayed from its home hub, a
	// peered hub that signed it (protocol.Via entries, compact JWS, in
	// order); absent for the hub's own records.
	Via []string `json:"via,omitempty"`
}

// FeedFloorHeader is the header of a cursor-expired answer of GET
// /v1/events that gives the oldest cursor the feed still serves: a
// reader that may skip what is gone (a peered hub catching up) starts
// there.
const FeedFloorHeader = "Sparr-Feed-Floor"

// A FeedPage is the answer of GET /v1/events?after=N&limit=L: the
// member's events after the cursor, in sequence order.
type FeedPage struct {
	Events []FeedEvent `json:"events"`
	// Next is the cursor for the next request (after=Next). It may be past
	// the last event's number, when the events after it are not the
	// member's; when More is false it is the hub's latest sequence number,
	// or the cursor asked with if that is later.
	Next uint64 `json:"next"`
	// More says more events may follow; ask again at once.
	More bool `json:"more"`
}

// A Snapshot is the answer of GET /v1/snapshot: the records of every
// active flag, and of every active suspicion the member reported itself,
// and the sequence number they are consistent at. A member that applies them and
// then follows the feed from Seq misses nothing. The hub streams it, with
// seq first:
//
//	{"seq":1234,"records":[{"seq":7,"type":"urn:sparr:event:flag-placed","jws":"…"},…]}
type Snapshot struct {
	Seq     uint64      `json:"seq"`
	Records []FeedEvent `json:"records"`
}

// A RecordResponse is the answer of GET /v1/records/{jti}: one signed
// record.
type RecordResponse struct {
	ID       string             `json:"id"`
	Type     protocol.EventType `json:"type"`
	Seq      uint64             `json:"seq"`
	IssuedAt time.Time          `json:"issued_at"`
	JWS      string             `json:"jws"`
}
