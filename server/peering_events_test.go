package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/client"
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
		if _, _, err := m.at[a][b].Client().RegisterEndpoint(context.Background(), m.hubs[a].URL+peering.EventsPath); err != nil {
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
		recv.WaitEvent(t, 10*time.Second, protocol.EventFlagPlaced)
		findEntry(t, se, protocol.LogPeerEvent, "hub-no", "type", "suspicion-reported")
		// Taken by the Swedish hub, the suspicion still goes to none of its
		// members in bulk.
		for _, g := range recv.Received() {
			if g.Record.Event.EventType() == protocol.EventSuspicionReported {
				t.Errorf("a Swedish member received a Norwegian suspicion: %+v", g)
			}
		}
		// The lift is a flag event Norway sends, and Sweden's policy does
		// not take: logged as refused, kept nowhere.
		if resp := bankNO.Submit(t, "/v1/flags/"+placed.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: placed.Flag.FlagID}); resp.Status != http.StatusOK {
			t.Fatalf("lift: got %d %s", resp.Status, resp.Body)
		}
		waitFor(t, "the refused lift's log entry", func() bool {
			return slices.ContainsFunc(se.LogEntries(t), func(e *protocol.LogEntry) bool {
				return e.Action == protocol.LogPeerEvent && attr(e, "type") == "flag-lifted" && e.Result == "rejected:policy"
			})
		})
		for _, g := range recv.Received() {
			if g.Record.Event.EventType() == protocol.EventFlagLifted {
				t.Errorf("a Swedish member received a lift Sweden's policy refuses: %+v", g)
			}
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
