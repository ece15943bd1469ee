package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// Events across hubs. As home hub, the hub delivers every record about
// its own identifiers to its peers (members with role peer) as it
// delivers to members: each record's Peers are decided when it is signed
// ([Hub.peersOf]), under the hub's policy for each peer. As receiving
// hub, it takes its peers' deliveries at POST /v1/peering/events
// ([Hub.peerEvent]) and fans them out to its own members, and on to its
// own peers while the hop limit allows.

// peersOf returns the peers a record of event type t about subjects,
// addressed to audience, goes to: on a hub with a jurisdiction, for
// records of its own identifier types only, to every active member with
// role peer whose policy lets it flow. A record with an audience goes to
// no peer, but a suspicion's (addressed to its reporter), which flows
// where a peer's policy names a legal basis.
func (h *Hub) peersOf(t protocol.EventType, audience string, subjects []protocol.Token) []string {
	if h.cfg.Jurisdiction == "" || audience != "" && !suspicionEvent(t) {
		return nil
	}
	types := make([]protocol.IdentifierType, len(subjects))
	for i, s := range subjects {
		if s.Type.Jurisdiction() != h.cfg.Jurisdiction {
			return nil // another hub's identifiers, or none's: never to peers
		}
		types[i] = s.Type
	}
	return h.peerTargets(t, types, nil)
}

// peerTargets returns the active members with role peer, but those in
// exclude, whose policy lets records of event type t about identifiers of
// types flow.
func (h *Hub) peerTargets(t protocol.EventType, types []protocol.IdentifierType, exclude []string) []string {
	ids, err := h.store.Peers()
	if err != nil {
		h.log.Error("reading the peers to deliver to failed; the record goes to no peer", "error", err)
		return nil
	}
	var out []string
	for _, id := range ids {
		if slices.Contains(exclude, id) {
			continue
		}
		if p := h.policyFor(id); p.AllowsEvent(t) && allowsTypes(p, types) {
			out = append(out, id)
		}
	}
	return out
}

// policyFor returns the hub's policy for the peer whose id (in the peers
// file, and as a member here) is id: the zero Policy, flag events only,
// for a peer the peers file does not name.
func (h *Hub) policyFor(id string) peering.Policy {
	for _, p := range h.peers() {
		if p.ID == id {
			return p.Policy
		}
	}
	return peering.Policy{}
}

func allowsTypes(p peering.Policy, types []protocol.IdentifierType) bool {
	for _, t := range types {
		if !p.AllowsType(t) {
			return false
		}
	}
	return true
}

func suspicionEvent(t protocol.EventType) bool {
	return t == protocol.EventSuspicionReported || t == protocol.EventSuspicionRetracted || t == protocol.EventSuspicionExpired
}

// peerFrom returns the registered peer whose issuer URL is url, or nil.
func (h *Hub) peerFrom(url string) *peering.Peer {
	url = strings.TrimSuffix(url, "/")
	for _, p := range h.peers() {
		if strings.TrimSuffix(p.URL, "/") == url {
			return p
		}
	}
	return nil
}

// peerKeys returns peer p's keys, fetched again (at most once a
// minute) when refresh is set.
func (h *Hub) peerKeys(ctx context.Context, p *peering.Peer, refresh bool) *peering.Keys {
	keys, err := p.Keys(ctx, h.cfg.PeerClient, refresh, h.now())
	if err != nil {
		h.log.Warn("a peer's keys could not be fetched", "peer", p.ID, "error", err)
		return nil
	}
	return keys
}

// peerEvent: POST /v1/peering/events, a peered hub delivering a record:
// the hub's webhook receiver for its peers. Nothing is parsed before it
// is verified: the delivery's webhook signature (v1a) under a registered
// peer's webhook key, naming this hub as the recipient; then the record
// is taken as [Hub.takeRelayed] takes every record a peer passes on, by
// push or from its feed.
func (h *Hub) peerEvent(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, protocol.MaxSignedSize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		h.fail(c, problemf(protocol.ProblemPayloadTooLarge, "the body is larger than %d bytes", protocol.MaxSignedSize))
		return
	case err != nil:
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "reading the body failed: %v", err))
		return
	}
	if ct := c.ContentType(); ct != protocol.DeliveryContentType {
		h.fail(c, problemf(protocol.ProblemUnsupportedMediaType, "Content-Type is %q; a peer delivers %s", ct, protocol.DeliveryContentType))
		return
	}
	now := h.now()
	sender := h.peerSender(c, body, now)
	if sender == nil {
		c.Header("WWW-Authenticate", `Bearer realm="sparr"`)
		h.fail(c, problemf(protocol.ProblemUnauthenticated, "the delivery carries no valid webhook signature (v1a) of a registered peer hub"))
		return
	}
	webhookID := c.GetHeader(protocol.HeaderWebhookID)
	res, p, err := h.takeRelayed(c.Request.Context(), relayedIn{sender: sender, body: body, via: protocol.SplitVia(c.GetHeader(protocol.HeaderVia)), webhookID: &webhookID}, now)
	switch {
	case err != nil:
		h.internal(c, "relay peer event", err)
		return
	case p != nil:
		h.fail(c, p)
		return
	}
	if res != nil && !res.Duplicate {
		c.Header("X-Sparr-Log-Index", fmt.Sprint(res.LogIndex))
	}
	c.Status(http.StatusAccepted)
}

// A relayedIn is a record a peer passed on: pushed to POST
// /v1/peering/events, or read from the peer's feed.
type relayedIn struct {
	sender *peering.Peer // the peer that passed it on
	body   []byte        // the record, a compact JWS, unverified
	via    []string      // its via chain, unverified
	// webhookID is a push's webhook-id header, which must name this hub
	// as the record's recipient; nil for a record read from the feed (the
	// hub asked the peer for it, as its member there).
	webhookID *string
}

// takeRelayed takes a record a peer passed on, by push or from its feed,
// by one set of rules: the record under the keys of its home hub, a
// registered peer home to its identifiers; then each via entry under the
// keys of the hub that added it. A record the hub's policy for its home
// hub (and for the peer that passed it on) does not let flow is logged as
// refused and kept nowhere; a jti taken before is dropped; a record that
// would go past the hop limit is refused. Otherwise the hub adds its own
// via entry and keeps the record (a RelayEvent), which fans it out to its
// members and, while the chain is shorter than the hop limit, to its own
// peers. It returns the result of the relay-event command (nil when the
// record was not kept: a verification record, a duplicate, a refusal by
// policy) or the problem that refuses the record; an error is the hub's
// own failure.
func (h *Hub) takeRelayed(ctx context.Context, in relayedIn, now time.Time) (*store.Result, *protocol.Problem, error) {
	sender, body, via := in.sender, in.body, in.via
	if len(via) >= protocol.HopLimit {
		return nil, problemf(protocol.ProblemValidation, "the record's via chain has %d entries: passing it on would go past the hop limit of %d", len(via), protocol.HopLimit), nil
	}
	home := sender
	if len(via) > 0 {
		home = nil // the home hub is the record's issuer, found by its keys
	}
	rec, home := h.verifyRelayed(ctx, body, home)
	if rec == nil {
		return nil, problemf(protocol.ProblemMalformedRequest, "the record does not verify under the keys of a registered peer hub"), nil
	}
	if in.webhookID != nil && *in.webhookID != protocol.DeliveryID(rec.ID, sender.Member) {
		return nil, problemf(protocol.ProblemUnauthenticated, "webhook-id %q does not name this hub (%s) as the recipient of record %s", *in.webhookID, sender.Member, rec.ID), nil
	}
	if rec.Event.EventType() == protocol.EventVerification {
		return nil, nil, nil // the peer verifying this endpoint
	}
	if seen, err := h.store.Relayed(rec.ID); err != nil {
		return nil, nil, fmt.Errorf("read relayed records: %w", err)
	} else if seen {
		return nil, nil, nil // a duplicate, taken before
	}
	chain, p := h.verifyVia(ctx, via, rec.ID, sender, home)
	if p != nil {
		return nil, p, nil
	}
	toks, err := rec.Subject.Tokens()
	if err != nil {
		return nil, problemf(protocol.ProblemValidation, "the record has no token subject: %v", err), nil
	}
	types := make([]protocol.IdentifierType, len(toks))
	texts := make([]string, len(toks))
	for i, t := range toks {
		if t.Type.Jurisdiction() != home.Jurisdiction {
			return nil, problemf(protocol.ProblemValidation, "the record is about identifiers of type %s, whose home is not %s (%s)", t.Type, home.Jurisdiction, home.ID), nil
		}
		types[i], texts[i] = t.Type, t.String()
	}
	et, hop := rec.Event.EventType(), len(via)+1
	ref := flagOf(rec.Event)
	var earlier []string
	if ref != "" && (et == protocol.EventFlagLifted || et == protocol.EventFlagExpired) {
		if earlier, err = h.store.RelayedRecords(ref); err != nil {
			return nil, nil, fmt.Errorf("read relayed records: %w", err)
		}
	}
	for _, pol := range []peering.Policy{home.Policy, sender.Policy} {
		// The end of a flag this hub holds is taken whatever the event
		// types: it erases what the hub and its members hold of it.
		if (!pol.AllowsEvent(et) && len(earlier) == 0) || !allowsTypes(pol, types) {
			// Taken, and dropped: the policy of this hub.
			if _, err := h.commit(h.decide.PeerEventRefused(sender.ID, home.ID, et, hop, now)); err != nil {
				return nil, nil, fmt.Errorf("log refused peer event: %w", err)
			}
			return nil, nil, nil
		}
	}
	mine, err := protocol.SignVia(&protocol.Via{Issuer: h.cfg.Issuer, Hub: sender.Member, Record: rec.ID, Hop: hop, IssuedAt: now}, h.cfg.Keys.Active())
	if err != nil {
		return nil, nil, fmt.Errorf("sign via entry: %w", err)
	}
	relayed := &state.Record{ID: rec.ID, Type: et, Subjects: texts, Ref: ref, IssuedAt: rec.IssuedAt, JWS: string(body),
		Via: append(slices.Clone(via), string(mine))}
	if hop < protocol.HopLimit {
		exclude := []string{home.ID, sender.ID}
		for _, v := range chain {
			if p := h.peerFrom(v.Issuer); p != nil {
				exclude = append(exclude, p.ID)
			}
		}
		relayed.Peers = h.peerTargets(et, types, exclude)
	}
	res, err := h.commit(h.decide.RelayEvent(sender.ID, home.ID, relayed, earlier, now))
	if err != nil {
		return nil, nil, fmt.Errorf("relay peer event: %w", err)
	}
	return res, nil, nil
}

// peerSender returns the registered peer whose webhook key signed the
// delivery (v1a), or nil. A peer whose key does not verify it has its
// keys fetched again, at most once a minute, in case it replaced them.
func (h *Hub) peerSender(c *gin.Context, body []byte, now time.Time) *peering.Peer {
	for _, refresh := range []bool{false, true} {
		for _, p := range h.peers() {
			keys := h.peerKeys(c.Request.Context(), p, refresh)
			if keys == nil {
				continue
			}
			v := protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{keys.Webhook}}
			if v.VerifyHeaders(c.Request.Header, body, now) == nil {
				return p
			}
		}
	}
	return nil
}

// verifyRelayed verifies body, a record, under the keys of home (if not
// nil) or of the registered peer whose keys name its key id, and returns
// it and its home hub: the peer whose keys verified it and whose issuer
// URL it names. Nil when none does.
func (h *Hub) verifyRelayed(ctx context.Context, body []byte, home *peering.Peer) (*protocol.Record, *peering.Peer) {
	candidates := h.peers()
	if home != nil {
		candidates = []*peering.Peer{home}
	}
	for _, refresh := range []bool{false, true} {
		for _, p := range candidates {
			keys := h.peerKeys(ctx, p, refresh)
			if keys == nil {
				continue
			}
			rec, err := protocol.VerifyRecord(body, keys.Records)
			if err == nil && h.peerFrom(rec.Issuer) == p {
				return rec, p
			}
		}
	}
	return nil, nil
}

// verifyVia verifies a delivery's via chain: each entry signed by the
// registered peer it names as its issuer, for record jti, at its place
// in the chain (hop 1 first), none by this hub, and the last by the peer
// that delivered the record. The home hub adds none: it delivers its own
// records with an empty chain.
func (h *Hub) verifyVia(ctx context.Context, via []string, jti string, sender, home *peering.Peer) ([]*protocol.Via, *protocol.Problem) {
	out := make([]*protocol.Via, len(via))
	for i, s := range via {
		var v *protocol.Via
		for _, refresh := range []bool{false, true} {
			for _, p := range h.peers() {
				if p == home {
					continue
				}
				keys := h.peerKeys(ctx, p, refresh)
				if keys == nil {
					continue
				}
				if got, err := protocol.VerifyVia([]byte(s), keys.Records); err == nil && h.peerFrom(got.Issuer) == p {
					v = got
					break
				}
			}
			if v != nil {
				break
			}
		}
		switch {
		case v == nil:
			return nil, problemf(protocol.ProblemValidation, "via entry %d does not verify under the keys of a registered peer hub", i+1)
		case v.Record != jti || v.Hop != i+1:
			return nil, problemf(protocol.ProblemValidation, "via entry %d is for record %s at hop %d, want %s at hop %d", i+1, v.Record, v.Hop, jti, i+1)
		case i == len(via)-1 && h.peerFrom(v.Issuer) != sender:
			return nil, problemf(protocol.ProblemValidation, "the last via entry is not the delivering hub's (%s)", sender.ID)
		}
		out[i] = v
	}
	if len(via) == 0 && sender != home {
		return nil, problemf(protocol.ProblemValidation, "a record of %s delivered by %s carries no via entry", home.ID, sender.ID)
	}
	return out, nil
}

// flagOf returns the id of the flag an event is about, or "".
func flagOf(ev protocol.Event) string {
	switch e := ev.(type) {
	case protocol.FlagPlaced:
		return e.FlagID
	case protocol.FlagExtended:
		return e.FlagID
	case protocol.FlagThawed:
		return e.FlagID
	case protocol.FlagLifted:
		return e.FlagID
	case protocol.FlagExpired:
		return e.FlagID
	}
	return ""
}
