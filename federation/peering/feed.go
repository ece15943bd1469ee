package peering

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// FeedPath is the route of a hub's event feed, which a peer reads as the
// member it is there.
const FeedPath = "/v1/events"

// EndpointPath is the route of a member's own webhook endpoint at a hub.
const EndpointPath = "/v1/members/self/endpoint"

// ErrNoEndpoint is returned by [Peer.Endpoint] when this hub has no
// webhook endpoint at the peer: it is not subscribed to its events.
var ErrNoEndpoint = errors.New("no endpoint at the peer")

// A CursorExpiredError is returned by [Peer.Feed] when the peer no
// longer keeps the events after the cursor asked with; Floor is the
// oldest cursor it still serves.
type CursorExpiredError struct {
	Peer  string
	After uint64
	Floor uint64
}

func (e *CursorExpiredError) Error() string {
	return fmt.Sprintf("peer %s: events after %d are no longer kept; the oldest cursor served is %d", e.Peer, e.After, e.Floor)
}

// Feed reads one page of the peer's feed (GET /v1/events) after cursor
// after, as this hub's member there, with a fresh bearer token of this
// hub, within the peer's timeout. The records in it are as the peer
// serves them: unverified. A cursor the peer no longer serves is a
// [*CursorExpiredError]; other errors are as [Peer.EvaluateTokens]
// returns them.
func (p *Peer) Feed(ctx context.Context, hc *http.Client, after uint64, limit int, now time.Time) (*api.FeedPage, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	_, _, data, err := p.do(ctx, hc, http.MethodGet, FeedPath+"?"+q.Encode(), nil, now)
	if pe, ok := errors.AsType[*ProblemError](err); ok && pe.Problem.Type == protocol.ProblemCursorExpired.URI {
		floor, ferr := strconv.ParseUint(pe.Floor, 10, 64)
		if ferr != nil {
			return nil, fmt.Errorf("peer %s: %w: a cursor-expired answer without its floor", p.ID, ErrUnreachable)
		}
		return nil, &CursorExpiredError{Peer: p.ID, After: after, Floor: floor}
	}
	if err != nil {
		return nil, err
	}
	var page api.FeedPage
	if err := json.Unmarshal(data, &page); err != nil {
		return nil, fmt.Errorf("peer %s: %w: the answer is not a feed page", p.ID, ErrUnreachable)
	}
	if page.Next < after {
		return nil, fmt.Errorf("peer %s: %w: the feed page goes back to %d from %d", p.ID, ErrUnreachable, page.Next, after)
	}
	return &page, nil
}

// Endpoint returns this hub's webhook endpoint at the peer as the peer
// shows it (GET /v1/members/self/endpoint): its status says whether the
// peer pushes records or paused. [ErrNoEndpoint] when there is none.
func (p *Peer) Endpoint(ctx context.Context, hc *http.Client, now time.Time) (*api.Endpoint, error) {
	return p.endpoint(ctx, hc, http.MethodGet, EndpointPath, now)
}

// ResumeEndpoint resumes this hub's paused endpoint at the peer (POST
// /v1/members/self/endpoint/resume), so that the peer pushes again, and
// returns it as the peer shows it then.
func (p *Peer) ResumeEndpoint(ctx context.Context, hc *http.Client, now time.Time) (*api.Endpoint, error) {
	return p.endpoint(ctx, hc, http.MethodPost, EndpointPath+"/resume", now)
}

func (p *Peer) endpoint(ctx context.Context, hc *http.Client, method, path string, now time.Time) (*api.Endpoint, error) {
	_, _, data, err := p.do(ctx, hc, method, path, nil, now)
	if pe, ok := errors.AsType[*ProblemError](err); ok && pe.Problem.Status == http.StatusNotFound {
		return nil, fmt.Errorf("peer %s: %w", p.ID, ErrNoEndpoint)
	}
	if err != nil {
		return nil, err
	}
	var resp api.EndpointResponse
	if err := json.Unmarshal(data, &resp); err != nil || resp.Endpoint == nil {
		return nil, fmt.Errorf("peer %s: %w: the answer is not an endpoint", p.ID, ErrUnreachable)
	}
	return resp.Endpoint, nil
}
