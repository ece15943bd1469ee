package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// An Event is one signed record with its place in the hub's sequence: from
// the feed, a snapshot, [Client.Record], or a webhook delivery. Its record
// has been verified against the hub's keys.
type Event struct {
	// Seq is the hub's sequence number of the event.
	Seq uint64
	// PreviousSeq is, for a delivery, the sequence number of the event
	// delivered to this member's endpoint before it
	// (Sparr-Previous-Sequence; 0 for the first). It counts only the event
	// types the endpoint subscribes to, and, like Seq, it is not covered by
	// the delivery's signature: a hint that a delivery went missing, never
	// proof that none did. The feed is the authority; see package replica.
	// It is 0 for events read from the feed or a snapshot.
	PreviousSeq uint64
	// WebhookID is, for a delivery, its webhook-id, the same on every retry.
	WebhookID string
	// Type is the record's event type.
	Type protocol.EventType
	// JWS is the record exactly as the hub signed it.
	JWS string
	// Record is the verified record.
	Record *protocol.Record
	// Via is the via chain of a record another hub signed (its home hub,
	// peered with the member's) and the member's hub relayed: each entry
	// a compact JWS ([protocol.VerifyVia]) by a hub that passed it on, the
	// member's hub last. Empty for the hub's own records.
	Via []string
}

// SubjectChecked returns the event's access notice, if it is one: another
// member checked the subject of a flag this member placed. Ask the
// consumer "was this you?", and send [Client.DenyCheck] if not.
func (e *Event) SubjectChecked() (protocol.SubjectChecked, bool) {
	ev, ok := e.Record.Event.(protocol.SubjectChecked)
	return ev, ok
}

// CheckDenied returns the event's denial, if it is one: the consumer said
// "not me" to a check this member made, through the member that placed
// their flag. Stop the application, or verify the applicant strongly.
func (e *Event) CheckDenied() (protocol.CheckDenied, bool) {
	ev, ok := e.Record.Event.(protocol.CheckDenied)
	return ev, ok
}

// Delivered reports whether the event came by webhook.
func (e *Event) Delivered() bool { return e.WebhookID != "" }

// A FeedPage is one page of the event feed ([api.FeedPage]), with every
// record verified.
type FeedPage struct {
	// Events are the member's events after the cursor, in sequence order,
	// verified.
	Events []*Event
	// Next is the cursor to ask for next; it may be past the last event's
	// number, when the events after it are not the member's. When More is
	// false, it is the hub's latest sequence number, or the cursor asked
	// with if that is later.
	Next uint64
	// More says more events may follow at once.
	More bool
}

// Feed reads one page of up to limit (1 to [api.MaxFeedPage]) events after the
// cursor, checked by [Verifier.Feed]. A cursor older than the feed keeps
// gives [ErrCursorExpired]: take a snapshot. Records erased since (a lifted flag's earlier records) are
// not in the feed; the lift that follows says to delete what you hold.
func (c *Client) Feed(ctx context.Context, after uint64, limit int) (*FeedPage, error) {
	if limit < 1 || limit > api.MaxFeedPage {
		return nil, fmt.Errorf("feed: limit %d: want 1 to %d", limit, api.MaxFeedPage)
	}
	path := "/v1/events?after=" + strconv.FormatUint(after, 10) + "&limit=" + strconv.Itoa(limit)
	answer, err := c.fetch(ctx, request{method: http.MethodGet, path: path})
	if err != nil {
		return nil, err
	}
	return c.verifier.Feed(ctx, after, answer)
}

// Events returns the member's events after the cursor, in order, each
// verified, reading the feed in pages of [api.MaxFeedPage] until it has caught
// up. It stops at the first error, which it yields with a nil event:
// [ErrCursorExpired] when the cursor is older than the feed keeps.
//
//	for e, err := range c.Events(ctx, cursor) {
//		if err != nil {
//			return err
//		}
//		apply(e)
//		cursor = e.Seq
//	}
func (c *Client) Events(ctx context.Context, after uint64) iter.Seq2[*Event, error] {
	return func(yield func(*Event, error) bool) {
		for {
			page, err := c.Feed(ctx, after, api.MaxFeedPage)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, e := range page.Events {
				if !yield(e, nil) {
					return
				}
			}
			if !page.More || page.Next <= after {
				return
			}
			after = page.Next
		}
	}
}

// A Snapshot is the hub's snapshot ([api.Snapshot]), with every record
// verified: the records of every active flag, and of every active
// suspicion the member itself reported, that it is entitled to,
// consistent at Seq: apply them, then follow the
// feed from Seq and nothing is missed.
type Snapshot struct {
	Seq    uint64
	Events []*Event
}

// Snapshot reads the whole snapshot into memory. A member with a large
// hub behind it uses [Client.WalkSnapshot], which holds one record at a
// time.
func (c *Client) Snapshot(ctx context.Context) (*Snapshot, error) {
	s := &Snapshot{}
	seq, err := c.WalkSnapshot(ctx, func(e *Event) error {
		s.Events = append(s.Events, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Seq = seq
	return s, nil
}

// WalkSnapshot reads the snapshot as a stream, verifying each record and
// calling fn with it, and returns the sequence number the snapshot is
// consistent at. An answer cut off midway is an error: then fn has seen
// part of the snapshot only, and the caller starts again.
func (c *Client) WalkSnapshot(ctx context.Context, fn func(*Event) error) (uint64, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/snapshot"})
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// Records are verified a batch at a time on every core, and handed to
	// fn in the order the hub sent them.
	const batch = 512
	pending := make([]api.FeedEvent, 0, batch)
	flush := func() error {
		events, err := c.verifier.events(ctx, pending)
		if err != nil {
			return err
		}
		pending = pending[:0]
		for _, e := range events {
			if err := fn(e); err != nil {
				return err
			}
		}
		return nil
	}
	seq, err := decodeSnapshot(resp.Body, func(fe api.FeedEvent) error {
		pending = append(pending, fe)
		if len(pending) == batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, fmt.Errorf("GET /v1/snapshot: %w", err)
	}
	return seq, nil
}

// decodeSnapshot decodes {"seq":N,"records":[…]} one record at a time.
func decodeSnapshot(r io.Reader, fn func(api.FeedEvent) error) (uint64, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return 0, err
	}
	var seq uint64
	haveSeq, haveRecords := false, false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return 0, err
		}
		switch tok {
		case "seq":
			if err := dec.Decode(&seq); err != nil {
				return 0, fmt.Errorf("seq: %w", err)
			}
			haveSeq = true
		case "records":
			if err := expectDelim(dec, '['); err != nil {
				return 0, err
			}
			for dec.More() {
				var fe api.FeedEvent
				if err := dec.Decode(&fe); err != nil {
					return 0, fmt.Errorf("records: %w", err)
				}
				if err := fn(fe); err != nil {
					return 0, err
				}
			}
			if err := expectDelim(dec, ']'); err != nil {
				return 0, err
			}
			haveRecords = true
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, err
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return 0, err
	}
	if !haveSeq || !haveRecords {
		return 0, errors.New("the answer lacks seq or records")
	}
	return seq, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("want %q, got %v", want, tok)
	}
	return nil
}
