package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/client/replica"
	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// A mesh is peered hubs on loopback, by jurisdiction ("SE", "NO", "DK").
// Each link (a, b) makes hub a a subscriber of hub b: a is a member of b
// with role peer (id hub-<a>), b is in a's peers file (id hub-<b>), and
// a's events route is its webhook endpoint at b, so that b delivers to a
// the records of its identifiers that b's policy for a lets flow.
type mesh struct {
	hubs  map[string]*hubtest.Hub
	peers map[string][]*peering.Peer // each hub's peers file
	// at[a][b] is hub a as hub b knows it: its member there.
	at map[string]map[string]*hubtest.Member
}

// hubID is the id of a hub of jurisdiction j, in its peers' files and
// as their member.
func hubID(j string) string { return "hub-" + strings.ToLower(j) }

// startMesh starts a hub for each jurisdiction and links them. policy, if
// not nil, is hub at's policy for peer (a jurisdiction). Every hub
// delivers on the fast schedule.
func startMesh(t testing.TB, jurisdictions []string, links [][2]string, policy func(at, peer string) peering.Policy, configure func(j string, c *server.Config)) *mesh {
	t.Helper()
	m := &mesh{hubs: map[string]*hubtest.Hub{}, peers: map[string][]*peering.Peer{}, at: map[string]map[string]*hubtest.Member{}}
	for _, j := range jurisdictions {
		m.hubs[j] = hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: suspicionsOn, Configure: func(c *server.Config) {
			c.Jurisdiction, c.Peers = j, m.peers[j]
			if configure != nil {
				configure(j, c)
			}
		}})
		m.at[j] = map[string]*hubtest.Member{}
	}
	for _, l := range links {
		a, b := l[0], l[1]
		member := m.hubs[b].AddMember(t, hubID(a), api.RolePeer)
		m.at[a][b] = member
		p := &peering.Peer{ID: hubID(b), Jurisdiction: b, URL: m.hubs[b].URL, Member: hubID(a), Key: member.Key, Token: m.hubs[b].Configuration().Token}
		if policy != nil {
			p.Policy = policy(a, b)
		}
		m.peers[a] = append(m.peers[a], p)
	}
	for _, j := range jurisdictions {
		if len(m.peers[j]) > 0 {
			m.hubs[j].Restart(t) // with its peers file
		}
	}
	for _, l := range links {
		a, b := l[0], l[1]
		p := m.peers[a][slices.IndexFunc(m.peers[a], func(p *peering.Peer) bool { return p.ID == hubID(b) })]
		if err := p.Subscribe(context.Background(), http.DefaultClient, m.hubs[a].URL, time.Now()); err != nil {
			t.Fatalf("%s subscribing at %s: %v", a, b, err)
		}
	}
	return m
}

// suspicionsOn is the policy of every hub of a mesh: suspicions enabled,
// so that a policy's legal basis for a peer is what decides whether they
// flow.
var suspicionsOn = decide.Policy{SuspicionLegalBasis: "brottsdatalagen; lov om behandling av opplysninger i politiet"}

// receiverAt starts a member of hub j with the check role and its webhook
// receiver, which trusts the other hubs of the mesh as home hubs.
func (m *mesh) receiverAt(t testing.TB, j, id string) *hubtest.Receiver {
	t.Helper()
	hub := m.hubs[j]
	r := hub.NewReceiver(t, hub.AddMember(t, id, api.RoleCheck))
	for k, other := range m.hubs {
		if k != j {
			r.TrustHome(t, other)
		}
	}
	r.Register(t)
	return r
}

// TestHomeHubEventsReachPeerMembers has a Norwegian bank flag a Norwegian
// number: the Norwegian hub delivers the record to the Swedish hub, which
// fans it out to its members unchanged, signed by the Norwegian hub, with
// its own signed via entry. The lift follows, and erases at the Swedish
// hub the placement it relayed.
func TestHomeHubEventsReachPeerMembers(t *testing.T) {
	m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, nil)
	se, no := m.hubs["SE"], m.hubs["NO"]
	recv := m.receiverAt(t, "SE", "bank-a")
	bankNO := no.AddMember(t, "bank-n", api.RoleFlag, api.RoleCheck)
	tok := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	// The route takes no bearer token, so TestEveryWriteIsProvablyLogged
	// does not reach it: its entry is proved here.
	prover, regulator := newLogProver(t, se), se.AddMember(t, "fi", api.RoleRegulator)
	placed := place(t, bankNO, tok)

	got := recv.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)
	if got.Record.Issuer != no.URL || got.Record.Subject.ID != tok.String() {
		t.Fatalf("got a record of %s about %s, want the Norwegian hub's about %s", got.Record.Issuer, got.Record.Subject.ID, tok)
	}
	raw := storedJWS(t, no, got.Record.ID)
	if _, err := protocol.VerifyRecord(raw, no.JWKS(t)); err != nil {
		t.Errorf("the relayed record does not verify with the home hub's keys: %v", err)
	}
	if _, err := protocol.VerifyRecord(raw, se.JWKS(t)); err == nil {
		t.Errorf("the relayed record verifies with the relaying hub's keys, want the home hub's only")
	}
	if len(got.Via) != 1 {
		t.Fatalf("got via %q, want the Swedish hub's one entry", got.Via)
	}
	v, err := protocol.VerifyVia([]byte(got.Via[0]), se.JWKS(t))
	if err != nil || v.Hub != "hub-se" || v.Hop != 1 || v.Record != got.Record.ID || v.Issuer != se.URL {
		t.Errorf("via entry %+v (%v), want hub-se's at hop 1 for %s", v, err, got.Record.ID)
	}
	// The Swedish hub's feed carries it too, with its via chain.
	page, err := recv.Member.Client().Feed(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(page.Events, func(e *client.Event) bool { return e.JWS == string(raw) }); i < 0 || len(page.Events[i].Via) != 1 {
		t.Errorf("the Swedish feed has %+v, want the relayed record with its via entry", page.Events)
	}
	entry := findEntry(t, se, protocol.LogPeerEvent, "hub-no", "type", "flag-placed")
	if attr(entry, "home") != "hub-no" || attr(entry, "hop") != "1" || entry.Result != "ok" {
		t.Errorf("Swedish log entry %+v, want home hub-no at hop 1", entry)
	}
	prover.proveBy("POST /v1/peering/events", regulator, "hub-no", protocol.LogPeerEvent, entry.Index)

	if resp := bankNO.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}); resp.Status != http.StatusOK {
		t.Fatalf("lift: got %d %s", resp.Status, resp.Body)
	}
	recv.WaitEvent(t, 10*time.Second, protocol.EventFlagLifted)
	if _, err := se.Store.Record(got.Record.ID); err == nil {
		t.Errorf("the Swedish hub still holds the relayed placement after the lift")
	}
	findEntry(t, se, protocol.LogPeerEvent, "hub-no", "type", "flag-lifted")
	if inv := recv.Invalid(); len(inv) > 0 {
		t.Errorf("the receiver refused deliveries: %v", inv)
	}
}

// storedJWS returns the signed bytes of record jti as hub keeps them.
func storedJWS(t testing.TB, hub *hubtest.Hub, jti string) []byte {
	t.Helper()
	rec, err := hub.Store.Record(jti)
	if err != nil {
		t.Fatalf("record %s: %v", jti, err)
	}
	return []byte(rec.JWS)
}

// fileHolds returns the buckets of hub's data file whose keys or values
// contain needle. The hub is stopped and started again around the walk.
func fileHolds(t testing.TB, hub *hubtest.Hub, needle []byte) []string {
	t.Helper()
	var found []string
	hub.Offline(t, func(path string) {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				return b.ForEach(func(k, v []byte) error {
					if bytes.Contains(k, needle) || bytes.Contains(v, needle) {
						found = append(found, string(name))
					}
					return nil
				})
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	return found
}

// A homeHub is a Norwegian hub at which a Swedish hub (hub-se) is
// registered as a peer: what a test hub needs to take relayed records.
type homeHub struct {
	hub  *hubtest.Hub
	seAt *hubtest.Member // hub-se, the Swedish hub's member there
	bank *hubtest.Member // a Norwegian bank with the flag role
}

// startHomeHub starts the Norwegian hub and returns it with the peer
// registration a Swedish hub's configuration takes.
func startHomeHub(t testing.TB) (*homeHub, *peering.Peer) {
	t.Helper()
	no := hubtest.Start(t, hubtest.Options{Delivery: fast, Configure: func(c *server.Config) { c.Jurisdiction = "NO" }})
	seAt := no.AddMember(t, "hub-se", api.RolePeer)
	p := &peering.Peer{ID: "hub-no", Jurisdiction: "NO", URL: no.URL, Member: "hub-se", Key: seAt.Key, Token: no.Configuration().Token}
	return &homeHub{hub: no, seAt: seAt, bank: no.AddMember(t, "bank-n", api.RoleFlag, api.RoleCheck)}, p
}

// relayOne subscribes se (peered with the home hub) to its events and has
// the Norwegian bank place a flag, then waits until se has taken the
// record.
func (h *homeHub) relayOne(t *testing.T, se *hubtest.Hub) {
	t.Helper()
	if _, _, err := h.seAt.Client().RegisterEndpoint(context.Background(), se.URL+peering.EventsPath); err != nil {
		t.Fatal(err)
	}
	place(t, h.bank, h.bank.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0])
	waitFor(t, "the relayed flag-placed record", func() bool {
		return slices.ContainsFunc(se.LogEntries(t), func(e *protocol.LogEntry) bool { return e.Action == protocol.LogPeerEvent })
	})
}

// TestPeerEventPolicy holds both hubs to their policies: the home hub
// sends a peer flag events, and suspicions only where its policy names a
// legal basis for that peer; the receiving hub keeps only the event and
// identifier types its policy for the home hub lets flow, and logs the
// rest as refused, keeping nothing of them.
func TestPeerEventPolicy(t *testing.T) {
	basis := "PSR Art. 83; SE-NO data-sharing agreement 2026-11"
	t.Run("suspicions with a legal basis at both ends", func(t *testing.T) {
		m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}, {"NO", "SE"}}, func(at, peer string) peering.Policy {
			if at == "SE" {
				return peering.Policy{EventTypes: []protocol.EventType{protocol.EventFlagPlaced, protocol.EventSuspicionReported}, SuspicionsLegalBasis: basis}
			}
			return peering.Policy{SuspicionsLegalBasis: basis}
		}, nil)
		se, no := m.hubs["SE"], m.hubs["NO"]
		recv := m.receiverAt(t, "SE", "bank-a")
		bankNO := no.AddMember(t, "bank-n", api.RoleFlag, api.RoleSuspicion)
		tok := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
		reportSuspicion(t, no, bankNO, tok)
		placed := place(t, bankNO, tok)
		placedRec := recv.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)
		findEntry(t, se, protocol.LogPeerEvent, "hub-no", "type", "suspicion-reported")
		// Taken by the Swedish hub, the suspicion still goes to none of its
		// members in bulk.
		for _, g := range recv.Received() {
			if g.Record.Event.EventType() == protocol.EventSuspicionReported {
				t.Errorf("a Swedish member received a Norwegian suspicion: %+v", g)
			}
		}
		// A thaw is a flag event Norway sends, and Sweden's policy does
		// not take: logged as refused, kept nowhere.
		thaw := bankNO.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/thaw", protocol.ThawFlag{FlagID: placed.Flag.FlagID, ThawUntil: protocol.NewNumericDate(no.Now().Add(time.Hour))})
		mustStatus(t, thaw, http.StatusOK)
		waitFor(t, "the refused thaw's log entry", func() bool {
			return slices.ContainsFunc(se.LogEntries(t), func(e *protocol.LogEntry) bool {
				return e.Action == protocol.LogPeerEvent && attr(e, "type") == "flag-thawed" && e.Result == "rejected:policy"
			})
		})
		// The lift is not among Sweden's event types either, but it ends
		// a flag Sweden holds: taken, it erases the placement.
		if resp := bankNO.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}); resp.Status != http.StatusOK {
			t.Fatalf("lift: got %d %s", resp.Status, resp.Body)
		}
		recv.WaitEvent(t, 10*time.Second, protocol.EventFlagLifted)
		for _, g := range recv.Received() {
			if g.Record.Event.EventType() == protocol.EventFlagThawed {
				t.Errorf("a Swedish member received a thaw Sweden's policy refuses: %+v", g)
			}
		}
		if rec, err := se.Store.Record(placedRec.Record.ID); err == nil {
			t.Errorf("the Swedish hub holds the placement %s after the lift", rec.ID)
		}
	})
	t.Run("no suspicions without a legal basis at the home hub", func(t *testing.T) {
		m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}, {"NO", "SE"}}, func(at, peer string) peering.Policy {
			if at == "SE" {
				return peering.Policy{SuspicionsLegalBasis: basis}
			}
			return peering.Policy{} // flag events only
		}, nil)
		se, no := m.hubs["SE"], m.hubs["NO"]
		recv := m.receiverAt(t, "SE", "bank-a")
		bankNO := no.AddMember(t, "bank-n", api.RoleFlag, api.RoleSuspicion)
		tok := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
		reportSuspicion(t, no, bankNO, tok)
		place(t, bankNO, tok)
		// Deliveries to the peer go in order: once the later flag is in,
		// the suspicion would have been.
		recv.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)
		for _, e := range se.LogEntries(t) {
			if e.Action == protocol.LogPeerEvent && attr(e, "type") != "flag-placed" {
				t.Errorf("got Swedish log entry %+v, want the flag's only", e)
			}
		}
	})
	t.Run("identifier types the receiving hub does not take", func(t *testing.T) {
		var logs bytes.Buffer
		m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, func(at, peer string) peering.Policy {
			return peering.Policy{IdentifierTypes: []protocol.IdentifierType{protocol.TypePersonalNumber}}
		}, func(j string, c *server.Config) {
			if j == "SE" {
				c.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
		})
		se, no := m.hubs["SE"], m.hubs["NO"]
		bankNO := no.AddMember(t, "bank-n", api.RoleFlag)
		tok := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
		placed := place(t, bankNO, tok)
		waitFor(t, "the refused record's log entry", func() bool {
			return slices.ContainsFunc(se.LogEntries(t), func(e *protocol.LogEntry) bool {
				return e.Action == protocol.LogPeerEvent && e.Result == "rejected:policy"
			})
		})
		jws := []byte(placed.Record)
		payload := jws[bytes.IndexByte(jws, '.')+1 : bytes.LastIndexByte(jws, '.')]
		for _, needle := range [][]byte{[]byte(tok.String()), payload} {
			if got := fileHolds(t, se, needle); len(got) > 0 {
				t.Errorf("the Swedish data file holds %.20s… in %v, want nowhere", needle, got)
			}
		}
		if bytes.Contains(logs.Bytes(), []byte(tok.String())) {
			t.Errorf("the Swedish hub's logs name the token")
		}
	})
}

// lockedWriter serialises writes to a buffer that a test reads later.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRelayingHubKeepsNoTokenBeyondPolicy has a Norwegian flag placed and
// lifted: the Swedish hub, which relayed both, holds the placement nowhere
// after the lift, and the token only in the lift's record (which its
// members must get, to delete theirs), not in its logs.
func TestRelayingHubKeepsNoTokenBeyondPolicy(t *testing.T) {
	var logs bytes.Buffer
	m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, func(j string, c *server.Config) {
		if j == "SE" {
			c.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
	})
	se, no := m.hubs["SE"], m.hubs["NO"]
	recv := m.receiverAt(t, "SE", "bank-a")
	bankNO := no.AddMember(t, "bank-n", api.RoleFlag)
	tok := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	placed := place(t, bankNO, tok)
	got := recv.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)
	jws := storedJWS(t, se, got.Record.ID)
	payload := jws[bytes.IndexByte(jws, '.')+1 : bytes.LastIndexByte(jws, '.')]
	if resp := bankNO.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}); resp.Status != http.StatusOK {
		t.Fatalf("lift: got %d %s", resp.Status, resp.Body)
	}
	recv.WaitEvent(t, 10*time.Second, protocol.EventFlagLifted)
	if got := fileHolds(t, se, payload); len(got) > 0 {
		t.Errorf("the Swedish data file holds the lifted placement in %v, want nowhere", got)
	}
	if got := fileHolds(t, se, []byte(tok.String())); !slices.Equal(got, []string{"records"}) {
		t.Errorf("the Swedish data file holds the token in %v, want the lift's record only", got)
	}
	if bytes.Contains(logs.Bytes(), []byte(tok.String())) {
		t.Errorf("the Swedish hub's logs name the token")
	}
	for _, e := range se.LogEntries(t) {
		for _, a := range e.Attrs {
			if strings.Contains(a.Value, tok.String()) || strings.Contains(a.Value, got.Record.ID) {
				t.Errorf("Swedish log entry %+v names the token or the record", e)
			}
		}
	}
}

// A peerDelivery is a hand-made delivery to a hub's events route: body signed
// with webhookKey (none: unsigned) as webhook id, with via entries.
type peerDelivery struct {
	body       []byte
	webhookKey ed25519.PrivateKey
	id         string
	via        []string
}

// deliver posts d to hub's events route and returns the answer.
func deliver(t testing.TB, hub *hubtest.Hub, d peerDelivery) *hubtest.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, hub.URL+peering.EventsPath, bytes.NewReader(d.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", protocol.DeliveryContentType)
	if len(d.via) > 0 {
		req.Header.Set(protocol.HeaderVia, strings.Join(d.via, ","))
	}
	if d.webhookKey != nil {
		if err := (protocol.WebhookSigner{Keys: []ed25519.PrivateKey{d.webhookKey}}).SignRequest(req, d.id, time.Now(), d.body); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &hubtest.Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// TestPeerEventsAreVerifiedFirst sends the Swedish hub deliveries made by
// hand with the Norwegian hub's keys: unsigned, signed by a stranger, a
// record forged or signed by another key, one for another recipient, and
// one past the hop limit are refused, with nothing kept or logged; a
// genuine one is taken once, however often it comes.
func TestPeerEventsAreVerifiedFirst(t *testing.T) {
	m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, nil)
	se, no := m.hubs["SE"], m.hubs["NO"]
	bankNO := no.AddMember(t, "bank-n", api.RoleFlag)
	tok := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	// A genuine record of the Norwegian hub's, not yet delivered: signed
	// with its key, as its decider would.
	rec := &protocol.Record{Issuer: no.URL, IssuedAt: time.Now(), ID: "019aa5f0-8c00-7000-8000-00000000f00d", Txn: "hand-made",
		Subject: protocol.OpaqueSubject(tok), Event: protocol.FlagPlaced{FlagID: "f-hand", Kind: protocol.FlagKindStandard, Origin: "bank-n",
			ExpiresAt: protocol.NewNumericDate(time.Now().AddDate(1, 0, 0)), ConsentRef: "c-hand"}}
	genuine, err := protocol.SignRecord(rec, no.Keys.Active())
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := hubtest.NewKey(t)
	strangerRecord, err := protocol.SignRecord(rec, stranger)
	if err != nil {
		t.Fatal(err)
	}
	_, strangerWebhook, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The genuine header and signature over another payload: a subject
	// the home hub never signed.
	other := *rec
	other.Subject = protocol.OpaqueSubject(bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "53097248016")[0])
	otherJWS, err := protocol.SignRecord(&other, no.Keys.Active())
	if err != nil {
		t.Fatal(err)
	}
	parts, otherParts := bytes.Split(genuine, []byte(".")), bytes.Split(otherJWS, []byte("."))
	forged := bytes.Join([][]byte{parts[0], otherParts[1], parts[2]}, []byte("."))
	id := protocol.DeliveryID(rec.ID, "hub-se")
	seVia, err := protocol.SignVia(&protocol.Via{Issuer: se.URL, Hub: "hub-se", Record: rec.ID, Hop: 1, IssuedAt: time.Now()}, se.Keys.Active())
	if err != nil {
		t.Fatal(err)
	}
	noVia, err := protocol.SignVia(&protocol.Via{Issuer: no.URL, Hub: "hub-no", Record: rec.ID, Hop: 1, IssuedAt: time.Now()}, no.Keys.Active())
	if err != nil {
		t.Fatal(err)
	}
	before := len(se.LogEntries(t))
	for _, tc := range []struct {
		name string
		d    peerDelivery
		want int
	}{
		{"unsigned", peerDelivery{body: genuine, id: id}, http.StatusUnauthorized},
		{"signed by a stranger", peerDelivery{body: genuine, webhookKey: strangerWebhook, id: id}, http.StatusUnauthorized},
		{"not a record", peerDelivery{body: []byte(`{"events":{}}`), webhookKey: no.Keys.Webhook, id: id}, http.StatusBadRequest},
		{"a forged record", peerDelivery{body: forged, webhookKey: no.Keys.Webhook, id: id}, http.StatusBadRequest},
		{"a record signed by another key", peerDelivery{body: strangerRecord, webhookKey: no.Keys.Webhook, id: id}, http.StatusBadRequest},
		{"for another recipient", peerDelivery{body: genuine, webhookKey: no.Keys.Webhook, id: protocol.DeliveryID(rec.ID, "hub-dk")}, http.StatusUnauthorized},
		{"a via entry from its home hub", peerDelivery{body: genuine, webhookKey: no.Keys.Webhook, id: id, via: []string{string(noVia)}}, http.StatusUnprocessableEntity},
		{"past the hop limit", peerDelivery{body: genuine, webhookKey: no.Keys.Webhook, id: id, via: []string{string(seVia), string(seVia)}}, http.StatusUnprocessableEntity},
	} {
		resp := deliver(t, se, tc.d)
		if p := resp.Problem(t); resp.Status != tc.want || p.Detail == "" {
			t.Errorf("%s: got %d %+v, want %d with a problem that says why", tc.name, resp.Status, p, tc.want)
		}
	}
	if n := len(se.LogEntries(t)); n != before {
		t.Errorf("got %d log entries for refused deliveries, want none", n-before)
	}
	if _, err := se.Store.Record(rec.ID); err == nil {
		t.Fatalf("the Swedish hub kept a record it refused")
	}

	for range 3 {
		if resp := deliver(t, se, peerDelivery{body: genuine, webhookKey: no.Keys.Webhook, id: id}); resp.Status != http.StatusAccepted {
			t.Fatalf("a genuine delivery: got %d %s, want 202", resp.Status, resp.Body)
		}
	}
	n := 0
	for _, e := range se.LogEntries(t) {
		if e.Action == protocol.LogPeerEvent {
			n++
		}
	}
	if n != 1 {
		t.Errorf("got %d peer-event entries for one record delivered thrice, want 1", n)
	}
	if got := storedJWS(t, se, rec.ID); !bytes.Equal(got, genuine) {
		t.Errorf("the Swedish hub keeps %q, want the home hub's bytes unchanged", got)
	}
}

// TestPeerEventsInAMesh peers three hubs each with both others, where a
// record could go round, and a fourth, Finland's, with Denmark's (and
// Norway's, for its keys). Denmark and Finland take only lifts from Norway
// directly, so a Norwegian placement reaches Denmark only as Sweden passes
// it on, at the hop limit: Denmark passes it on to no one, Finland
// included. The lift reaches each both ways. Each member gets each record
// once, each hub takes it once (the copies passed back are dropped by
// jti), and no copy goes past the hop limit.
func TestPeerEventsInAMesh(t *testing.T) {
	js := []string{"SE", "NO", "DK"}
	var links [][2]string
	for _, a := range js {
		for _, b := range js {
			if a != b {
				links = append(links, [2]string{a, b})
			}
		}
	}
	links = append(links, [2]string{"FI", "DK"}, [2]string{"FI", "NO"})
	js = append(js, "FI")
	m := startMesh(t, js, links, nil, nil)
	for _, j := range []string{"DK", "FI"} {
		if _, _, err := m.at[j]["NO"].Client().RegisterEndpoint(context.Background(), m.hubs[j].URL+peering.EventsPath, protocol.EventFlagLifted); err != nil {
			t.Fatal(err)
		}
	}
	recvSE, recvDK := m.receiverAt(t, "SE", "bank-a"), m.receiverAt(t, "DK", "bank-d")
	bankNO := m.hubs["NO"].AddMember(t, "bank-n", api.RoleFlag)
	placed := place(t, bankNO, bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0])
	jti := recvSE.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced).Record.ID
	recvDK.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)
	for j, want := range map[string]struct {
		via   int
		peers []string
	}{"SE": {1, []string{"hub-dk"}}, "DK": {2, nil}} {
		rec, err := m.hubs[j].Store.Record(jti)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Via) != want.via || !slices.Equal(rec.Peers, want.peers) {
			t.Errorf("%s holds the placement with %d via entries, passed on to %v; want %d, passed on to %v", j, len(rec.Via), rec.Peers, want.via, want.peers)
		}
	}
	chain := m.hubs["DK"].Store
	rec, _ := chain.Record(jti)
	for i, want := range []*hubtest.Hub{m.hubs["SE"], m.hubs["DK"]} {
		if v, err := protocol.VerifyVia([]byte(rec.Via[i]), want.JWKS(t)); err != nil || v.Hop != i+1 || v.Issuer != want.URL {
			t.Errorf("via entry %d: %+v (%v), want %s's at hop %d", i+1, v, err, want.URL, i+1)
		}
	}

	if resp := bankNO.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}); resp.Status != http.StatusOK {
		t.Fatalf("lift: got %d %s", resp.Status, resp.Body)
	}
	recvSE.WaitEvent(t, 10*time.Second, protocol.EventFlagLifted)
	recvDK.WaitEvent(t, 10*time.Second, protocol.EventFlagLifted)
	// Every copy passed on between the hubs has been delivered.
	waitFor(t, "the hubs' deliveries to one another", func() bool {
		for _, a := range js {
			for _, b := range js {
				if a == b {
					continue
				}
				if n, err := m.hubs[b].Store.Backlog(hubID(a)); err != nil || n > 0 {
					return false
				}
			}
		}
		return true
	})
	for _, r := range []*hubtest.Receiver{recvSE, recvDK} {
		seen := map[string]int{}
		for _, g := range r.Received() {
			seen[g.Record.ID]++
		}
		for id, n := range seen {
			if n != 1 {
				t.Errorf("%s received record %s %d times, want once", r.Member.ID, id, n)
			}
		}
		if len(seen) != 3 { // the endpoint's verification, the placement, the lift
			t.Errorf("%s received %d records, want 3", r.Member.ID, len(seen))
		}
	}
	for _, e := range m.hubs["FI"].LogEntries(t) {
		if e.Action == protocol.LogPeerEvent && attr(e, "type") != "flag-lifted" {
			t.Errorf("Finland took %+v, want the lift only: the placement reached Denmark at the hop limit", e)
		}
	}
	for _, j := range []string{"SE", "DK", "FI"} {
		taken := map[string]int{}
		for _, e := range m.hubs[j].LogEntries(t) {
			if e.Action == protocol.LogPeerEvent {
				taken[attr(e, "type")]++
				if h := attr(e, "hop"); h != "1" && h != "2" {
					t.Errorf("%s took a record at hop %s", j, h)
				}
			}
		}
		if j != "FI" && (taken["flag-placed"] != 1 || taken["flag-lifted"] != 1 || len(taken) != 2) {
			t.Errorf("%s took %v, want the placement and the lift once each", j, taken)
		}
		for _, b := range js {
			if b == j {
				continue
			}
			if dead, err := m.hubs[b].Store.DeadLetters(hubID(j), 10); err != nil || len(dead) > 0 {
				t.Errorf("%s refused deliveries from %s: %+v (%v), want duplicates taken as delivered", j, b, dead, err)
			}
		}
	}
}

// TestPeerDownAndBack has the Swedish hub's events route go down (a proxy
// in front of it answers 503): a Norwegian placement reaches the Norwegian
// hub's own members meanwhile, and the Swedish members once the route is
// back, by the home hub's retries. The home hub's feed serves the peer
// the record too, by cursor, as it serves members.
func TestPeerDownAndBack(t *testing.T) {
	m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, func(j string, c *server.Config) {
		if j == "NO" {
			c.Delivery = server.Delivery{Schedule: []time.Duration{0, 200 * time.Millisecond, time.Second, 5 * time.Second, time.Minute}, Timeout: 2 * time.Second}
		}
	})
	se, no := m.hubs["SE"], m.hubs["NO"]
	target, err := url.Parse(se.URL)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	refused := make(chan struct{}, 16)
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			select {
			case refused <- struct{}{}:
			default:
			}
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	seAt := m.at["SE"]["NO"]
	if _, _, err := seAt.Client().RegisterEndpoint(context.Background(), front.URL+peering.EventsPath); err != nil {
		t.Fatal(err)
	}
	recvSE := m.receiverAt(t, "SE", "bank-a")
	recvNO := no.NewReceiver(t, no.AddMember(t, "bank-x", api.RoleCheck))
	recvNO.Register(t)
	bankNO := no.AddMember(t, "bank-n", api.RoleFlag)

	down.Store(true)
	placed := place(t, bankNO, bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0])
	<-refused
	// The Norwegian hub's own member is not held up by the peer that is down.
	recvNO.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)
	for _, g := range recvSE.Received() {
		if g.Record.Event.EventType() == protocol.EventFlagPlaced {
			t.Fatalf("a Swedish member got the placement while the Swedish hub was down")
		}
	}
	// The peer may read the record from the home hub's feed meanwhile.
	page, err := seAt.Client().Feed(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(page.Events, func(e *client.Event) bool { return e.JWS == placed.Record }) {
		t.Errorf("the Norwegian feed for hub-se has %d events, want the placement among them", len(page.Events))
	}
	down.Store(false)
	got := recvSE.WaitEvent(t, 30*time.Second, protocol.EventFlagPlaced)
	if got.Record.Issuer != no.URL {
		t.Errorf("got a record of %s, want the Norwegian hub's", got.Record.Issuer)
	}
}

// TestReplicaTakesRelayedRecords has a Swedish bank's replica mirror a
// Norwegian flag its hub relayed: the SDK verifies the record with the
// Norwegian hub's keys (the issuer its hub lists in home_tokens), and the
// replica answers verify for the Norwegian token (so does one that starts
// from the snapshot afterwards), then none after the lift. A record signed
// by neither hub is refused.
func TestReplicaTakesRelayedRecords(t *testing.T) {
	m := startMesh(t, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, nil)
	se, no := m.hubs["SE"], m.hubs["NO"]
	bank := se.AddMember(t, "bank-a", api.RoleCheck)
	rep, err := replica.Open(filepath.Join(t.TempDir(), "replica.db"), replica.Config{Client: bank.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	ctx := context.Background()
	if err := rep.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	bankNO := no.AddMember(t, "bank-n", api.RoleFlag)
	tok := bankNO.Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")[0]
	placed := place(t, bankNO, tok)
	waitFor(t, "the relayed placement", func() bool { return hasPeerEvent(t, se, "flag-placed") })
	if err := rep.Sync(ctx); err != nil {
		t.Fatalf("sync with a relayed record: %v", err)
	}
	if a := rep.Lookup(tok); a.Advice != api.AdviceVerify || a.Flag == nil || a.Flag.ID != placed.Flag.FlagID {
		t.Fatalf("the replica answers %+v for the Norwegian token, want verify and flag %s", a, placed.Flag.FlagID)
	}
	// A replica that starts now has it from the snapshot: the relaying hub
	// holds a relayed flag's records while the flag is active.
	late, err := replica.Open(filepath.Join(t.TempDir(), "late.db"), replica.Config{Client: bank.Client()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { late.Close() })
	if err := late.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if a := late.Lookup(tok); a.Advice != api.AdviceVerify {
		t.Errorf("a replica bootstrapped after the relay answers %+v, want verify from the snapshot", a)
	}
	if resp := bankNO.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}); resp.Status != http.StatusOK {
		t.Fatalf("lift: got %d %s", resp.Status, resp.Body)
	}
	waitFor(t, "the relayed lift", func() bool { return hasPeerEvent(t, se, "flag-lifted") })
	if err := rep.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if a := rep.Lookup(tok); a.Advice != api.AdviceNone {
		t.Errorf("the replica answers %+v after the lift, want none", a)
	}
	// The SDK takes a relayed record only under its home hub's keys.
	stranger, _ := hubtest.NewKey(t)
	forged, err := protocol.SignRecord(&protocol.Record{Issuer: no.URL, IssuedAt: time.Now(), ID: "019aa5f0-8c00-7000-8000-0000000000aa", Txn: "t",
		Subject: protocol.OpaqueSubject(tok), Event: protocol.FlagLifted{FlagID: "f-x", Origin: "bank-n"}}, stranger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bank.Client().Keys().Verify(ctx, forged); !errors.Is(err, protocol.ErrUnknownKey) {
		t.Errorf("a record signed by neither hub: got %v, want unknown key", err)
	}
}

// hasPeerEvent reports whether hub's log has taken a relayed record of
// type short.
func hasPeerEvent(t testing.TB, hub *hubtest.Hub, short string) bool {
	return slices.ContainsFunc(hub.LogEntries(t), func(e *protocol.LogEntry) bool {
		return e.Action == protocol.LogPeerEvent && e.Result == "ok" && attr(e, "type") == short
	})
}

// FuzzPeerEvent sends the Swedish hub's events route arbitrary bodies and
// via chains, signed with the Norwegian hub's webhook key or not: it never
// answers 5xx, every refusal is a problem document, and it keeps only
// records the Norwegian hub signed.
func FuzzPeerEvent(f *testing.F) {
	m := startMesh(f, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, nil)
	se, no := m.hubs["SE"], m.hubs["NO"]
	bankNO := no.AddMember(f, "bank-n", api.RoleFlag)
	tok := bankNO.Tokenize(f, protocol.TypeNorwegianNumber, "13097248022")[0]
	resp := bankNO.Submit(f, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bankNO.Consent(tok)})
	var placed flagResponse
	resp.JSON(f, &placed)
	genuine := placed.Record
	via, err := protocol.SignVia(&protocol.Via{Issuer: se.URL, Hub: "hub-se", Record: "r-1", Hop: 1, IssuedAt: time.Now()}, se.Keys.Active())
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []struct {
		body, via string
	}{
		{genuine, ""}, {genuine, string(via)}, {genuine, string(via) + "," + string(via)}, {"", ""}, {"a.b.c", "x.y.z"},
		{`{"iss":"` + no.URL + `"}`, ""}, {genuine[:len(genuine)/2], ""}, {genuine + "A", " , "},
	} {
		f.Add(true, []byte(s.body), s.via)
		f.Add(false, []byte(s.body), s.via)
	}
	f.Fuzz(func(t *testing.T, signed bool, body []byte, via string) {
		d := peerDelivery{body: body, id: "r-1_hub-se"}
		if signed {
			d.webhookKey = no.Keys.Webhook
		}
		if strings.ContainsFunc(via, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) {
			t.Skip("not a value an HTTP header can carry")
		}
		if via != "" {
			d.via = []string{via}
		}
		resp := deliver(t, se, d)
		switch {
		case resp.Status >= 500:
			t.Fatalf("%q via %q: got %d %s", body, via, resp.Status, resp.Body)
		case resp.Status >= 400:
			if p := resp.Problem(t); p.Detail == "" {
				t.Errorf("%q: got a problem without detail: %+v", body, p)
			}
		case resp.Status == http.StatusAccepted:
			if _, err := protocol.VerifyRecord(body, no.JWKS(t)); err != nil {
				t.Errorf("%q taken (%d), but it is no record of the Norwegian hub's: %v", body, resp.Status, err)
			}
		}
	})
}

// BenchmarkPeerEventPropagation places and lifts a Norwegian flag, one
// at a time, and times each placement from just before the Norwegian bank
// sends it until a Norwegian member's receiver has the record (one hub)
// and until a Swedish member's receiver has it (relayed by the Swedish
// hub), in the same run. It reports the medians and 99th percentiles, and
// the ratio of the medians.
func BenchmarkPeerEventPropagation(b *testing.B) {
	m := startMesh(b, []string{"SE", "NO"}, [][2]string{{"SE", "NO"}}, nil, func(j string, c *server.Config) {
		c.Limits.Writes = server.Rate{PerSecond: 1e6, Burst: 1e6}
	})
	no := m.hubs["NO"]
	recvSE := m.receiverAt(b, "SE", "bank-a")
	recvNO := no.NewReceiver(b, no.AddMember(b, "bank-x", api.RoleCheck))
	recvNO.Register(b)
	bankNO := no.AddMember(b, "bank-n", api.RoleFlag)
	tok := bankNO.Tokenize(b, protocol.TypeNorwegianNumber, "13097248022")[0]
	var local, relayed []time.Duration
	for b.Loop() {
		start := time.Now()
		resp := bankNO.Submit(b, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bankNO.Consent(tok)})
		var placed flagResponse
		resp.JSON(b, &placed)
		rec, err := protocol.VerifyRecord([]byte(placed.Record), no.JWKS(b))
		if err != nil {
			b.Fatal(err)
		}
		is := func(g hubtest.Received) bool { return g.Record.ID == rec.ID }
		local = append(local, recvNO.WaitFor(b, 10*time.Second, "the placement", is).At.Sub(start))
		relayed = append(relayed, recvSE.WaitFor(b, 10*time.Second, "the relayed placement", is).At.Sub(start))
		if resp := bankNO.Submit(b, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}); resp.Status != http.StatusOK {
			b.Fatalf("lift: got %d %s", resp.Status, resp.Body)
		}
	}
	pct := func(d []time.Duration, p float64) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	b.ReportMetric(float64(pct(local, 0.5).Microseconds()), "one-hub-p50-µs")
	b.ReportMetric(float64(pct(local, 0.99).Microseconds()), "one-hub-p99-µs")
	b.ReportMetric(float64(pct(relayed, 0.5).Microseconds()), "relayed-p50-µs")
	b.ReportMetric(float64(pct(relayed, 0.99).Microseconds()), "relayed-p99-µs")
	b.ReportMetric(float64(pct(relayed, 0.5))/float64(pct(local, 0.5)), "relayed/one-hub")
}
