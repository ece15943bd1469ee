package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// DefaultPeerFeedInterval is how often the hub reads its peers' feeds
// when Config.PeerFeedInterval is 0.
const DefaultPeerFeedInterval = 30 * time.Second

// peerFeedPage is how many events one read of a peer's feed asks for.
const peerFeedPage = 100

// Catching up from a peer's feed. A home hub pushes the records of its
// identifiers to this hub's events route; when its retries for this hub
// run out it pauses the endpoint and keeps the records in its feed. Every
// Config.PeerFeedInterval, this hub reads, for each peer it is subscribed
// to, the peer's feed (GET /v1/events, as its member there) from the
// cursor it keeps in its replicated state, takes each record as a pushed
// one is taken ([Hub.takeRelayed]: a jti taken before is dropped, so
// records that come both ways are taken once), and, once it has caught
// up, resumes its endpoint at the peer if the peer paused it.

// runPeerFeeds reads the peers' feeds every Config.PeerFeedInterval until
// stop is closed (the hub stops). Each peer is read in its own goroutine, at most one at a
// time per peer: a peer that is down or slow delays no other.
func (h *Hub) runPeerFeeds(stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	busy := map[string]bool{}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(h.cfg.PeerFeedInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			cancel()
			return
		case <-t.C:
		}
		for _, p := range h.peers() {
			mu.Lock()
			if busy[p.ID] {
				mu.Unlock()
				continue
			}
			busy[p.ID] = true
			mu.Unlock()
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(busy, p.ID)
					mu.Unlock()
				}()
				if err := h.readPeerFeed(ctx, p); err != nil && ctx.Err() == nil {
					h.log.Warn("reading a peer's feed failed; trying again on the next round", "peer", p.ID, "error", err)
				}
			})
		}
	}
}

// readPeerFeed catches up from peer p's feed, if this hub is subscribed
// there (it has an endpoint that is not disabled), and then resumes its
// endpoint there if p paused it. Each request is bounded by p's timeout.
func (h *Hub) readPeerFeed(ctx context.Context, p *peering.Peer) error {
	hc := h.cfg.PeerClient
	ep, err := p.Endpoint(ctx, hc, h.now())
	if errors.Is(err, peering.ErrNoEndpoint) {
		return nil // not subscribed
	}
	if err != nil {
		return err
	}
	if ep.Status == api.EndpointDisabled {
		return nil
	}
	after, _, err := h.store.PeerCursor(p.ID)
	if err != nil {
		return err
	}
	taken := 0
	for {
		page, err := p.Feed(ctx, hc, after, peerFeedPage, h.now())
		if expired, ok := errors.AsType[*peering.CursorExpiredError](err); ok {
			h.log.Warn("a peer no longer keeps the events after this hub's cursor; reading its feed from the oldest it serves",
				"peer", p.ID, "cursor", after, "oldest", expired.Floor)
			if err := h.keepPeerCursor(p.ID, expired.Floor); err != nil {
				return err
			}
			after = expired.Floor
			continue
		}
		if err != nil {
			return err
		}
		for _, ev := range page.Events {
			res, prob, err := h.takeRelayed(ctx, relayedIn{sender: p, body: []byte(ev.JWS), via: ev.Via}, h.now())
			if err != nil {
				return err // the cursor stays before this record: it is read again
			}
			if prob != nil {
				h.log.Warn("a record in a peer's feed was refused", "peer", p.ID, "seq", ev.Seq, "problem", prob.Type, "detail", prob.Detail)
				continue
			}
			if res != nil && !res.Duplicate {
				taken++
			}
		}
		if page.Next != after {
			if err := h.keepPeerCursor(p.ID, page.Next); err != nil {
				return err
			}
			after = page.Next
		}
		if !page.More {
			break
		}
	}
	if taken > 0 {
		h.log.Info("caught up from a peer's feed", "peer", p.ID, "records", taken, "cursor", after)
	}
	if ep.Status == api.EndpointPaused {
		if _, err := p.ResumeEndpoint(ctx, hc, h.now()); err != nil {
			return err
		}
		h.log.Info("resumed this hub's endpoint at a peer after catching up from its feed", "peer", p.ID, "cursor", after)
	}
	return nil
}

// keepPeerCursor keeps after as the cursor of peer's feed.
func (h *Hub) keepPeerCursor(peer string, after uint64) error {
	_, err := h.commit(&state.PeerCursor{Peer: peer, After: after})
	return err
}
