package server

import (
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
func (h *Hub) peerKeys(c *gin.Context, p *peering.Peer, refresh bool) *peering.Keys {
	keys, err := p.Keys(c.Request.Context(), h.cfg.PeerClient, refresh, h.now())
	if err != nil {
		h.log.Warn("a peer's keys could not be fetched", "peer", p.ID, "error", err)
		return nil
	}
	return keys
}

// peerEvent: POST /v1/peering/events, a peered hub delivering a record:
// the hub's webhook receiver for its peers. Nothing is parsed before it
// is verified: the delivery's webhook signature (v1a) under a registered
// peer's webhook key, naming this hub as the recipient; then the record,
// under the keys of its home hub, a registered peer home to its
// identifiers; then each via entry under the keys of the hub that added
// it. A record the hub's policy for its home hub (and for the peer that
// delivered it) does not let flow is logged as refused and kept nowhere;
// a jti taken before is answered 202 and dropped; a record that would go
// past the hop limit is refused. Otherwise the hub adds its own via entry
// and keeps the record (a RelayEvent), which fans it out to its members
// and, while the chain is shorter than the hop limit, to its own peers.
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
	via := protocol.SplitVia(c.GetHeader(protocol.HeaderVia))
	if len(via) >= protocol.HopLimit {
		h.fail(c, problemf(protocol.ProblemValidation, "the record's via chain has %d entries: passing it on would go past the hop limit of %d", len(via), protocol.HopLimit))
		return
	}
	home := sender
	if len(via) > 0 {
		home = nil // the home hub is the record's issuer, found by its keys
	}
	rec, home := h.verifyRelayed(c, body, home)
	if rec == nil {
		h.fail(c, problemf(protocol.ProblemMalformedRequest, "the record does not verify under the keys of a registered peer hub"))
		return
	}
	if id := c.GetHeader(protocol.HeaderWebhookID); id != protocol.DeliveryID(rec.ID, sender.Member) {
		h.fail(c, problemf(protocol.ProblemUnauthenticated, "webhook-id %q does not name this hub (%s) as the recipient of record %s", id, sender.Member, rec.ID))
		return
	}
	if rec.Event.EventType() == protocol.EventVerification {
		c.Status(http.StatusAccepted) // the peer verifying this endpoint
		return
	}
	if seen, err := h.store.Relayed(rec.ID); err != nil {
		h.internal(c, "read relayed records", err)
		return
	} else if seen {
		c.Status(http.StatusAccepted) // a duplicate, taken before
		return
	}
	chain, p := h.verifyVia(c, via, rec.ID, sender, home)
	if p != nil {
		h.fail(c, p)
		return
	}
	toks, err := rec.Subject.Tokens()
	if err != nil {
		h.fail(c, problemf(protocol.ProblemValidation, "the record has no token subject: %v", err))
		return
	}
	types := make([]protocol.IdentifierType, len(toks))
	texts := make([]string, len(toks))
	for i, t := range toks {
		if t.Type.Jurisdiction() != home.Jurisdiction {
			h.fail(c, problemf(protocol.ProblemValidation, "the record is about identifiers of type %s, whose home is not %s (%s)", t.Type, home.Jurisdiction, home.ID))
			return
		}
		types[i], texts[i] = t.Type, t.String()
	}
	et, hop := rec.Event.EventType(), len(via)+1
	ref := flagOf(rec.Event)
	var earlier []string
	if ref != "" && (et == protocol.EventFlagLifted || et == protocol.EventFlagExpired) {
		if earlier, err = h.store.RelayedRecords(ref); err != nil {
			h.internal(c, "read relayed records", err)
			return
		}
	}
	for _, pol := range []peering.Policy{home.Policy, sender.Policy} {
		// The end of a flag this hub holds is taken whatever the event
		// types: it erases what the hub and its members hold of it.
		if (!pol.AllowsEvent(et) && len(earlier) == 0) || !allowsTypes(pol, types) {
			if _, ok := h.commitFor(c, "log refused peer event", h.decide.PeerEventRefused(sender.ID, home.ID, et, hop, now)); ok {
				c.Status(http.StatusAccepted) // taken, and dropped: the policy of this hub
			}
			return
		}
	}
	mine, err := protocol.SignVia(&protocol.Via{Issuer: h.cfg.Issuer, Hub: sender.Member, Record: rec.ID, Hop: hop, IssuedAt: now}, h.cfg.Keys.Active())
	if err != nil {
		h.internal(c, "sign via entry", err)
		return
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
	res, ok := h.commitFor(c, "relay peer event", h.decide.RelayEvent(sender.ID, home.ID, relayed, earlier, now))
	if !ok {
		return
	}
	if !res.Duplicate {
		c.Header("X-Sparr-Log-Index", fmt.Sprint(res.LogIndex))
	}
	c.Status(http.StatusAccepted)
}

// peerSender returns the registered peer whose webhook key signed the
// delivery (v1a), or nil. A peer whose key does not verify it has its
// keys fetched again, at most once a minute, in case it replaced them.
func (h *Hub) peerSender(c *gin.Context, body []byte, now time.Time) *peering.Peer {
	for _, refresh := range []bool{false, true} {
		for _, p := range h.peers() {
			keys := h.peerKeys(c, p, refresh)
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
func (h *Hub) verifyRelayed(c *gin.Context, body []byte, home *peering.Peer) (*protocol.Record, *peering.Peer) {
	candidates := h.peers()
	if home != nil {
		candidates = []*peering.Peer{home}
	}
	for _, refresh := range []bool{false, true} {
		for _, p := range candidates {
			keys := h.peerKeys(c, p, refresh)
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
func (h *Hub) verifyVia(c *gin.Context, via []string, jti string, sender, home *peering.Peer) ([]*protocol.Via, *protocol.Problem) {
	out := make([]*protocol.Via, len(via))
	for i, s := range via {
		var v *protocol.Via
		for _, refresh := range []bool{false, true} {
			for _, p := range h.peers() {
				if p == home {
					continue
				}
				keys := h.peerKeys(c, p, refresh)
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
