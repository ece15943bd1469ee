package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// The regulator's audit calls: the exchange log's entries as the audit API
// shows them, filtered, counted and exported. The hub answers them to a
// member with the regulator role only. Entries as they are hashed into the
// log, with proofs, are read with [Client.Log].

// An AuditFilter selects exchange-log entries; zero fields select all.
type AuditFilter struct {
	// Member selects the entries of one member.
	Member string
	// Action selects the entries of one action.
	Action protocol.LogAction
	// From selects entries at or after it, To entries before it.
	From, To time.Time
}

// query returns the filter as query parameters, name and value.
func (f AuditFilter) query() []string {
	t := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	return []string{"member", f.Member, "action", string(f.Action), "from", t(f.From), "to", t(f.To)}
}

// AuditEntries reads one page of the entries f selects, in index order:
// those after the entry index after (nil: from the first), at most limit
// of them (1 to [api.MaxLogPage]; 0 for the hub's default, 100). A page's
// Next, when set, is the after of the next page:
//
//	var after *uint64
//	for {
//		page, err := c.AuditEntries(ctx, f, after, 0)
//		if err != nil {
//			return err
//		}
//		use(page.Entries)
//		if page.Next == nil {
//			break
//		}
//		after = page.Next
//	}
func (c *Client) AuditEntries(ctx context.Context, f AuditFilter, after *uint64, limit int) (*api.AuditPage, error) {
	if limit < 0 || limit > api.MaxLogPage {
		return nil, fmt.Errorf("audit entries: limit %d: want 1 to %d, or 0 for the hub's default", limit, api.MaxLogPage)
	}
	q := f.query()
	if after != nil {
		q = append(q, "after", strconv.FormatUint(*after, 10))
	}
	if limit > 0 {
		q = append(q, "limit", strconv.Itoa(limit))
	}
	out := new(api.AuditPage)
	if err := c.call(ctx, request{method: http.MethodGet, path: queryPath("/v1/audit/entries", q...)}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditStats counts the entries f selects: in all, per member, per action,
// per day (UTC), and refusals per reason.
func (c *Client) AuditStats(ctx context.Context, f AuditFilter) (*api.AuditStats, error) {
	out := new(api.AuditStats)
	if err := c.call(ctx, request{method: http.MethodGet, path: queryPath("/v1/audit/stats", f.query()...)}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// The formats of [Client.AuditExport].
const (
	// AuditJSONL is one JSON [api.AuditEntry] per line.
	AuditJSONL = "jsonl"
	// AuditCSV is CSV with a header row: index, time, member, action,
	// result, commitment, attrs.
	AuditCSV = "csv"
)

// AuditExport writes every entry f selects to w, as the hub streams them,
// in format ([AuditJSONL] or [AuditCSV]), and returns how many bytes it
// wrote. An export that breaks off midway is an error, and w then holds
// part of it.
func (c *Client) AuditExport(ctx context.Context, f AuditFilter, format string, w io.Writer) (int64, error) {
	if format != AuditJSONL && format != AuditCSV {
		return 0, fmt.Errorf("audit export: format %q: want %q or %q", format, AuditJSONL, AuditCSV)
	}
	path := queryPath("/v1/audit/export", append(f.query(), "format", format)...)
	return c.stream(ctx, request{method: http.MethodGet, path: path, accept: "application/jsonl, text/csv"}, w)
}

// AuditMembers lists every member with the state of delivery to its
// endpoint, as a regulator sees them.
func (c *Client) AuditMembers(ctx context.Context) (*api.AuditMembers, error) {
	out := new(api.AuditMembers)
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/audit/members"}, out); err != nil {
		return nil, err
	}
	return out, nil
}
