package bench

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
)

// A border is two peered hubs on loopback: a Norwegian hub, home to
// Norwegian numbers, and a Swedish hub that relays its members' requests
// for them there and subscribes to the Norwegian hub's events, each
// registered with the other through its operator API, as in production.
type border struct {
	no, se *hub
	// origin places flags at the Norwegian hub; local checks there;
	// remote, at the Swedish hub, checks Norwegian tokens through it.
	origin, local, remote *member
	// noRcv and seRcv are a member's receiver at each hub.
	noRcv, seRcv *counter
	epoch        uint32
}

// runBorder: a relayed check (a member of the Swedish hub checking
// Norwegian tokens, which its hub relays to the Norwegian hub) beside the
// same check made at the Norwegian hub, and a flag placed at the
// Norwegian hub reaching a member's receiver of the Swedish hub (through
// the Norwegian hub's delivery to the Swedish hub and its fan-out) beside
// the same flag reaching a member's receiver of the Norwegian hub, timed
// from the same placements.
func runBorder(ctx context.Context, cfg *Config) ([]Row, error) {
	b, err := startBorder(cfg)
	if err != nil {
		return nil, err
	}
	defer b.close()
	toks := make([]protocol.Token, 2000)
	for i := range toks {
		toks[i] = b.fnrToken()
	}
	for _, tok := range toks[:len(toks)/100] {
		body, err := b.origin.placeFlag(tok)
		if err != nil {
			return nil, err
		}
		if _, err := b.origin.place(ctx, body); err != nil {
			return nil, err
		}
	}
	bodies := make([][]byte, len(toks))
	for i, tok := range toks {
		bodies[i], _ = json.Marshal(api.CheckRequest{Purpose: api.PurposeCreditApplication, Tokens: []string{tok.String()}})
	}
	workers := min(cfg.Concurrency, 8)
	remote, err := b.remote.connect(keepAlive(workers))
	if err != nil {
		return nil, err
	}
	local, err := b.local.connect(keepAlive(workers))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   checks: %d clients, %s a run, %d runs each; propagation: %d flags a run\n", workers, cfg.Duration, cfg.Runs, cfg.Events)
	pick := func(w, i int) []byte { return bodies[(w*7919+i*104729)%len(bodies)] }
	relayed, direct, err := alternate(cfg.Runs,
		func() (map[string]float64, error) {
			return load(ctx, workers, cfg.Duration, func(w, i int) error {
				_, err := send(ctx, remote, "/v1/check", "application/json", pick(w, i), http.StatusOK)
				return err
			})
		},
		func() (map[string]float64, error) {
			return load(ctx, workers, cfg.Duration, func(w, i int) error {
				_, err := send(ctx, local, "/v1/check", "application/json", pick(w, i), http.StatusOK)
				return err
			})
		})
	if err != nil {
		return nil, err
	}
	cross, home := map[string][]float64{}, map[string][]float64{}
	for range cfg.Runs {
		c, h, err := b.propagation(ctx, cfg.Events)
		if err != nil {
			return nil, err
		}
		for k, v := range c {
			cross[k] = append(cross[k], v)
		}
		for k, v := range h {
			home[k] = append(home[k], v)
		}
	}
	c := fmt.Sprintf("C=%d", workers)
	const checkBase, propBase = "the same check at the home hub", "the same flag to a member of the home hub"
	return []Row{
		row("relayed check p50, "+c, "ms", false, relayed, direct, "p50", checkBase),
		row("relayed check p99, "+c, "ms", false, relayed, direct, "p99", checkBase),
		row("relayed checks/s, "+c, "req/s", true, relayed, direct, "rps", checkBase),
		row("cross-border propagation p50", "ms", false, cross, home, "p50", propBase),
		row("cross-border propagation p99", "ms", false, cross, home, "p99", propBase),
	}, nil
}

// startBorder starts the two hubs, registers each with the other, and
// subscribes the Swedish hub to the Norwegian hub's events and a member
// receiver at each.
func startBorder(cfg *Config) (b *border, err error) {
	b = &border{}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	if b.no, err = startHubWith(cfg, func(c *server.Config) { c.Jurisdiction = "NO" }); err != nil {
		return nil, err
	}
	b.epoch = b.no.keys.Token.Epoch()
	keyDir := filepath.Join(cfg.Dir, fmt.Sprintf("peer-keys-%d", time.Now().UnixNano()))
	if b.se, err = startHubWith(cfg, func(c *server.Config) { c.Jurisdiction, c.PeerKeyDir = "SE", keyDir }); err != nil {
		return nil, err
	}
	ctx := context.Background()
	// The Norwegian operator registers the Swedish hub as a peer member;
	// the Swedish operator registers the Norwegian hub, its key for it in
	// the peer key directory.
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		return nil, err
	}
	ks, err := protocol.NewKeySet(key.Public())
	if err != nil {
		return nil, err
	}
	jwks, err := ks.MarshalJSON()
	if err != nil {
		return nil, err
	}
	q := unlimitedQuotas
	if _, err := b.no.operator.c.AddMember(ctx, api.MemberRequest{ID: "hub-se", Name: "Spärr SE", Roles: []api.Role{api.RolePeer}, JWKS: jwks, Quotas: &q}); err != nil {
		return nil, err
	}
	private, err := key.MarshalPrivateJWK()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(keyDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(keyDir, "hub-no.jwk"), private, 0o600); err != nil {
		return nil, err
	}
	if _, err := b.se.operator.c.AddPeer(ctx, api.PeerRequest{ID: "hub-no", Jurisdiction: "NO", URL: b.no.url, Member: "hub-se",
		KeyFile: "hub-no.jwk", Token: b.no.keys.Token.Public()}); err != nil {
		return nil, err
	}
	at, err := client.New(client.Config{HubURL: b.no.url, MemberID: "hub-se", Key: key, HTTPClient: b.no.client})
	if err != nil {
		return nil, err
	}
	if _, _, err := at.RegisterEndpoint(ctx, b.se.url+peering.EventsPath); err != nil {
		return nil, fmt.Errorf("subscribe the Swedish hub: %w", err)
	}
	if b.origin, err = b.no.addMember("bank-origin", api.RoleFlag); err != nil {
		return nil, err
	}
	if b.local, err = b.no.addMember("bank-local", api.RoleCheck); err != nil {
		return nil, err
	}
	if b.remote, err = b.se.addMember("bank-remote", api.RoleCheck); err != nil {
		return nil, err
	}
	for _, side := range []struct {
		h   *hub
		rcv **counter
	}{{b.no, &b.noRcv}, {b.se, &b.seRcv}} {
		cs, err := subscribe(side.h, 1)
		if err != nil {
			return nil, err
		}
		*side.rcv = cs[0]
	}
	// The Swedish hub's endpoint at the Norwegian one is verified once it
	// took the verification event.
	deadline := time.Now().Add(time.Minute)
	for {
		eps, err := b.no.operator.c.Endpoints(ctx)
		if err != nil {
			return nil, err
		}
		active := false
		for _, e := range eps {
			active = active || e.Member == "hub-se" && e.Status == api.EndpointActive
		}
		if active {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the Swedish hub's subscription was not verified within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fnrToken returns a random Norwegian token of the home hub's epoch.
func (b *border) fnrToken() protocol.Token {
	tok := protocol.Token{Type: protocol.TypeNorwegianNumber, Epoch: b.epoch}
	rand.Read(tok.Value[:])
	return tok
}

// propagation places events flags at the Norwegian hub, one at a time,
// and returns the latency percentiles of each reaching the Swedish
// hub's member and the Norwegian hub's member.
func (b *border) propagation(ctx context.Context, events int) (cross, home map[string]float64, err error) {
	var cl, hl []time.Duration
	for range events {
		body, err := b.origin.placeFlag(b.fnrToken())
		if err != nil {
			return nil, nil, err
		}
		t0 := time.Now()
		resp, err := b.origin.place(ctx, body)
		if err != nil {
			return nil, nil, err
		}
		var placed api.WriteResponse
		if err := json.Unmarshal(resp, &placed); err != nil {
			return nil, nil, err
		}
		rec, err := protocol.VerifyRecord([]byte(placed.Record), b.no.keys.JWKS())
		if err != nil {
			return nil, nil, err
		}
		at, err := b.noRcv.wait(ctx, time.Minute, protocol.DeliveryID(rec.ID, b.noRcv.member))
		if err != nil {
			return nil, nil, err
		}
		hl = append(hl, at.Sub(t0))
		at, err = b.seRcv.wait(ctx, time.Minute, protocol.DeliveryID(rec.ID, b.seRcv.member))
		if err != nil {
			return nil, nil, err
		}
		cl = append(cl, at.Sub(t0))
	}
	return map[string]float64{"p50": percentile(cl, 50), "p99": percentile(cl, 99)},
		map[string]float64{"p50": percentile(hl, 50), "p99": percentile(hl, 99)}, nil
}

func (b *border) close() {
	for _, c := range []*counter{b.noRcv, b.seRcv} {
		if c != nil {
			c.close()
		}
	}
	for _, h := range []*hub{b.se, b.no} {
		if h != nil {
			h.close()
		}
	}
}
