package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// runHubsDemo tells the cross-border story (sparr demo --hubs se,no): a
// Swedish and a Norwegian hub in this process, peered through their
// operator APIs, each with one bank.
func runHubsDemo(ctx context.Context, e *env, name, hubs string) error {
	parts := strings.Split(strings.ToLower(strings.ReplaceAll(hubs, " ", "")), ",")
	slices.Sort(parts)
	if !slices.Equal(parts, []string{"no", "se"}) {
		return usagef("%s: --hubs %q: the cross-border story has a Swedish and a Norwegian hub: give --hubs se,no", name, hubs)
	}
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	s := &hubsStory{out: e.stdout,
		se: &demo{out: io.Discard, n: 1, jurisdiction: "SE", firstBank: 'A', regulatorName: "Finansinspektionen"},
		no: &demo{out: io.Discard, n: 1, jurisdiction: "NO", firstBank: 'N', regulatorName: "Finanstilsynet"}}
	defer s.se.close()
	defer s.no.close()
	for _, d := range []*demo{s.se, s.no} {
		if err := d.start(ctx); err != nil {
			return fmt.Errorf("demo: setting up the %s hub: %w", d.jurisdiction, err)
		}
	}
	return s.tell(ctx)
}

// A hubsStory is the cross-border story: the Swedish hub and its Bank A,
// the Norwegian hub and its Bank N.
type hubsStory struct {
	out    io.Writer
	se, no *demo

	tok    protocol.Token      // the Swede's personnummer, as a token
	placed *client.WriteResult // the flag Bank A placed
}

func (s *hubsStory) printf(format string, args ...any) { fmt.Fprintf(s.out, format, args...) }

// tell tells the story step by step and stops at the first step that does
// not behave as told.
func (s *hubsStory) tell(ctx context.Context) error {
	a, n := s.se.banks[0], s.no.banks[0]
	s.printf("Spärr demo across a border: a Swedish hub (%s) with %s, and a Norwegian hub (%s)\n", s.se.issuer, a.name, s.no.issuer)
	s.printf("with %s, all on this machine. Each hub is home to its own country's identity numbers.\n", n.name)
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"the operators of the two hubs register each other", s.peer},
		{"a Swede asks Bank A to protect their personnummer", s.placeFlag},
		{"a fraudster applies for credit at Bank N in Norway with that personnummer", s.stopFraudster},
		{"the consumer lifts the flag at Bank A, and Bank N learns of it", s.lift},
		{"a Norwegian living in Sweden asks Bank A to protect their fødselsnummer", s.flagAbroad},
		{"what the two exchange logs hold", s.showLogs},
	}
	for i, st := range steps {
		if err := st.run(ctx); err != nil {
			return &stepError{step: i + 1, title: st.title, err: err}
		}
	}
	s.printf("\nAll %d steps behaved as described. The temporary data is being removed.\n", len(steps))
	return nil
}

// peer is step 1: each hub's operator makes a signing key for the other
// hub, the other operator registers it as a member with role peer, and
// each registers the other as the home hub of its country's numbers,
// through the operator API, pinning its token key.
func (s *hubsStory) peer(ctx context.Context) error {
	s.printf("\nStep 1. The operators of the two hubs register each other.\n")
	for _, pair := range [][2]*demo{{s.se, s.no}, {s.no, s.se}} {
		from, to := pair[0], pair[1]
		fromID, toID := demoHubID(from), demoHubID(to)
		key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
		if err != nil {
			return err
		}
		private, err := key.MarshalPrivateJWK()
		if err != nil {
			return err
		}
		dir := filepath.Join(from.dir, "keys", "peers")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, toID+".jwk"), private, 0o600); err != nil {
			return err
		}
		ks, err := protocol.NewKeySet(key.Public())
		if err != nil {
			return err
		}
		jwks, err := ks.MarshalJSON()
		if err != nil {
			return err
		}
		if _, err := to.admin.AddMember(ctx, api.MemberRequest{ID: fromID, Name: "Spärr " + from.jurisdiction, Roles: []api.Role{api.RolePeer}, JWKS: jwks}); err != nil {
			return err
		}
		conf, err := to.admin.Configuration(ctx)
		if err != nil {
			return err
		}
		added, err := from.admin.AddPeer(ctx, api.PeerRequest{ID: toID, Jurisdiction: to.jurisdiction, URL: to.issuer, Member: fromID,
			KeyFile: toID + ".jwk", Token: conf.Token})
		if err != nil {
			return err
		}
		// The hub subscribes to the peer's events: its endpoint there is
		// its own route for peers' deliveries.
		at, err := client.New(client.Config{HubURL: to.issuer, MemberID: fromID, Key: key})
		if err != nil {
			return err
		}
		if _, _, err := at.RegisterEndpoint(ctx, from.issuer+peering.EventsPath); err != nil {
			return fmt.Errorf("%s subscribing at %s: %w", fromID, toID, err)
		}
		s.printf("  The %s operator registers %s as the home hub of %s numbers (its token key of epoch %d\n", from.jurisdiction, toID, to.jurisdiction, conf.Token.Epoch)
		s.printf("  pinned, log entry %d); the %s operator registered %s as a member with role peer,\n", added.LogIndex, to.jurisdiction, fromID)
		s.printf("  and %s subscribed there to the %s records its policy lets flow.\n", fromID, to.jurisdiction)
	}
	// Each hub's endpoint at the other is verified once it took the
	// verification event: from then on every record reaches it.
	for _, pair := range [][2]*demo{{s.se, s.no}, {s.no, s.se}} {
		from, to := pair[0], pair[1]
		err := to.waitFor(ctx, demoHubID(from)+"'s subscription verified", func() bool {
			eps, err := to.admin.Endpoints(ctx)
			if err != nil {
				return false
			}
			for _, e := range eps {
				if e.Member == demoHubID(from) && e.Status == api.EndpointActive {
					return true
				}
			}
			return false
		})
		if err != nil {
			return err
		}
	}
	for _, d := range []*demo{s.se, s.no} {
		for _, b := range d.banks {
			if err := b.client.Refresh(ctx); err != nil {
				return err
			}
		}
	}
	s.printf("  Each hub's private key for the other stays in its own key directory, never in its data.\n")
	return nil
}

// demoHubID is the id a demo hub has at its peer ("hub-se").
func demoHubID(d *demo) string { return "hub-" + strings.ToLower(d.jurisdiction) }

// placeFlag is step 2: Bank A, in Sweden, flags the Swede's personnummer
// at the Swedish hub, its home.
func (s *hubsStory) placeFlag(ctx context.Context) error {
	a := s.se.banks[0]
	s.printf("\nStep 2. A Swede asks %s (Sweden) to protect their personnummer.\n", a.name)
	toks, err := a.client.Tokenize(ctx, protocol.TypePersonalNumber, demoPersonnummer)
	if err != nil {
		return err
	}
	s.tok = toks[0]
	sent := time.Now()
	if s.placed, err = a.client.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: s.tok, Consent: demoConsent(a, time.Now())}); err != nil {
		return err
	}
	s.printf("  %s turns %s into a token under the Swedish hub's key, and the Swedish hub\n", a.name, demoPersonnummer)
	s.printf("  places the flag and signs it (log entry %d).\n", s.placed.LogIndex)
	n := s.no.banks[0]
	if err := s.no.waitFor(ctx, n.name+" receiving the flag", func() bool { _, ok := n.arrival(s.placed.Record.ID); return ok }); err != nil {
		return err
	}
	at, _ := n.arrival(s.placed.Record.ID)
	if adv := n.replica.Lookup(s.tok); adv.Advice != api.AdviceVerify {
		return fmt.Errorf("%s's replica says %s", n.name, adv)
	}
	s.printf("  The Swedish hub delivers the signed flag to the Norwegian hub, which checks the Swedish\n")
	s.printf("  hub's signature, adds its own signed via entry and fans it out: %s (Norway) has it in its\n", n.name)
	s.printf("  replica %d ms after %s sent it, verified with the Swedish hub's keys.\n", at.Sub(sent).Milliseconds(), a.name)
	return nil
}

// stopFraudster is step 3: Bank N, in Norway, tokenizes the personnummer
// through its own hub, which relays the blinded number to the Swedish
// hub; its check, relayed the same way, says verify, with the Swedish
// hub's signed record, which the bank verifies with the Swedish hub's
// published keys.
func (s *hubsStory) stopFraudster(ctx context.Context) error {
	n := s.no.banks[0]
	s.printf("\nStep 3. A fraudster applies for credit at %s (Norway) with that personnummer.\n", n.name)
	toks, err := n.client.Tokenize(ctx, protocol.TypePersonalNumber, "090527+1474")
	if err != nil {
		return err
	}
	if toks[0] != s.tok {
		return fmt.Errorf("%s's token differs from %s's", n.name, s.se.banks[0].name)
	}
	s.printf("  %s asks its own hub for the token; the Norwegian hub relays the blinded number to\n", n.name)
	s.printf("  the Swedish hub, its home, and learns nothing: the token is the one %s has.\n", s.se.banks[0].name)
	res, err := s.relayedCheck(ctx, api.PurposeCreditApplication)
	if err != nil {
		return err
	}
	r := res.Results[0]
	if r.Advice != api.AdviceVerify || r.Flag == nil || len(r.Flag.Records) == 0 {
		return fmt.Errorf("the check answered %s; it should have said verify, with the flag's record", r.Advice)
	}
	rec, kid, err := verifyAtHome(ctx, n.client, protocol.TypePersonalNumber, r.Flag.Records[0])
	if err != nil {
		return err
	}
	if rec.Issuer != s.se.issuer || rec.ID != s.placed.Record.ID {
		return fmt.Errorf("the record is %s of %s; it should be the Swedish hub's %s", rec.ID, rec.Issuer, s.placed.Record.ID)
	}
	s.printf("  %s's check, relayed by its hub to the Swedish hub, says VERIFY, with the flag's record\n", n.name)
	s.printf("  signed by the Swedish hub (key %s).\n", kid)
	s.printf("  %s verified it with the keys the Swedish hub publishes, which its own hub's discovery\n", n.name)
	s.printf("  document names; the Norwegian hub's keys do not verify it. The fraudster cannot prove\n")
	s.printf("  who they are with BankID, and gets no credit.\n")
	return nil
}

// relayedCheck has Bank N check the Swede's token at the Norwegian hub.
// The SDK's Check verifies records with the bank's own hub's keys; a
// relayed check's records are the home hub's, so the demo reads the
// answer as it came and verifies them with the home hub's keys.
func (s *hubsStory) relayedCheck(ctx context.Context, purpose string) (*api.CheckResponse, error) {
	body, err := json.Marshal(api.CheckRequest{Purpose: purpose, Tokens: []string{s.tok.String()}})
	if err != nil {
		return nil, err
	}
	resp, err := s.no.banks[0].client.Raw(ctx, client.RawRequest{Method: http.MethodPost, Path: "/v1/check", ContentType: "application/json", Body: body})
	if err != nil {
		return nil, err
	}
	if p := resp.Problem(); p != nil {
		return nil, p
	}
	var out api.CheckResponse
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		return nil, err
	}
	if len(out.Results) != 1 {
		return nil, fmt.Errorf("%d results for one token", len(out.Results))
	}
	return &out, nil
}

// verifyAtHome verifies a record about identifiers of type typ with the
// keys of their home hub, as the discovery document of the hub of bank
// names it, and makes sure that the bank's own hub's keys do not verify
// it. It returns the record and the id of the key that signed it.
func verifyAtHome(ctx context.Context, bank *client.Client, typ protocol.IdentifierType, jws string) (*protocol.Record, string, error) {
	conf, err := bank.Configuration(ctx)
	if err != nil {
		return nil, "", err
	}
	issuer := ""
	for _, h := range conf.HomeTokens {
		if slices.Contains(h.Types, typ) {
			issuer = h.Issuer
		}
	}
	if issuer == "" {
		return nil, "", fmt.Errorf("the bank's hub names no home hub of %s", typ)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, issuer+"/.well-known/jwks.json", nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxKeySetSize+1))
	if err != nil {
		return nil, "", err
	}
	keys, err := protocol.ParseKeySet(b)
	if err != nil {
		return nil, "", err
	}
	rec, err := protocol.VerifyRecord([]byte(jws), keys)
	if err != nil {
		return nil, "", err
	}
	own, err := bank.FetchKeys(ctx)
	if err != nil {
		return nil, "", err
	}
	if _, err := protocol.VerifyRecord([]byte(jws), own); err == nil {
		return nil, "", errors.New("the record verifies with the bank's own hub's keys; it should be its home hub's alone")
	}
	return rec, keys.Keys()[len(keys.Keys())-1].KeyID(), nil
}

// lift is step 4: Bank A lifts the flag at the Swedish hub; Bank N's next
// check, relayed there, says none.
func (s *hubsStory) lift(ctx context.Context) error {
	a, n := s.se.banks[0], s.no.banks[0]
	s.printf("\nStep 4. The consumer lifts the flag at %s.\n", a.name)
	liftedAt := time.Now()
	lift := ""
	if demoSkip == nil || !demoSkip(4) {
		lifted, err := a.client.LiftFlag(ctx, s.placed.Flag.ID)
		if err != nil {
			return err
		}
		lift = lifted.Record.ID
	}
	err := s.no.waitFor(ctx, n.name+" forgetting the flag", func() bool {
		_, ok := n.arrival(lift)
		return ok && n.replica.Lookup(s.tok).Flag == nil
	})
	if err != nil {
		return err
	}
	at, _ := n.arrival(lift)
	s.printf("  The lift reaches %s through the Norwegian hub %d ms later: its replica no longer\n", n.name, at.Sub(liftedAt).Milliseconds())
	s.printf("  holds the flag.\n")
	res, err := s.relayedCheck(ctx, api.PurposeAccountOpening)
	if err != nil {
		return err
	}
	if adv := res.Results[0].Advice; adv != api.AdviceNone {
		return fmt.Errorf("%s's check answered %s after the lift; it should have said none", n.name, adv)
	}
	s.printf("  The Swedish hub ends the flag. %s's next check, relayed to the Swedish hub, says NONE.\n", n.name)
	return nil
}

// demoFodselsnummer is the Norwegian consumer's fødselsnummer: a
// synthetic test number from protocol/testdata.
const demoFodselsnummer = "13097248022"

// flagAbroad is step 5: Bank A places a flag on a Norwegian number; its
// hub verifies the signed submission, countersigns it and relays it to
// the Norwegian hub, which holds the flag and signs its record; Bank N's
// check at its own hub says verify.
func (s *hubsStory) flagAbroad(ctx context.Context) error {
	a, n := s.se.banks[0], s.no.banks[0]
	s.printf("\nStep 5. A Norwegian living in Sweden asks %s to protect their fødselsnummer.\n", a.name)
	toks, err := a.client.Tokenize(ctx, protocol.TypeNorwegianNumber, demoFodselsnummer)
	if err != nil {
		return err
	}
	tok := toks[0]
	cons := demoConsent(a, time.Now())
	cons.ID, cons.Subject, cons.Controller, cons.Purpose, cons.LegalBasis = "demo-consent-fnr", tok, a.id, "identity-fraud-protection", "gdpr-art-6-1-a"
	sub, err := a.client.Sign(ctx, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: cons})
	if err != nil {
		return err
	}
	resp, err := a.client.Raw(ctx, client.RawRequest{Method: http.MethodPost, Path: sub.Path, ContentType: "application/jose", Body: sub.JWS})
	if err != nil {
		return err
	}
	if p := resp.Problem(); p != nil {
		return p
	}
	var placed api.WriteResponse
	if err := json.Unmarshal(resp.Body, &placed); err != nil {
		return err
	}
	rec, _, err := verifyAtHome(ctx, a.client, protocol.TypeNorwegianNumber, placed.Record)
	if err != nil {
		return err
	}
	if rec.Issuer != s.no.issuer {
		return fmt.Errorf("the flag's record is the hub %s's; it should be the Norwegian hub's", rec.Issuer)
	}
	s.printf("  %s signs the flag as any other; its hub sees a Norwegian token, countersigns the\n", a.name)
	s.printf("  submission and relays it to the Norwegian hub, which holds the flag and signs its record\n")
	s.printf("  (%s verified it with the Norwegian hub's keys).\n", a.name)
	res, err := n.client.Check(ctx, api.PurposeCreditApplication, tok)
	if err != nil {
		return err
	}
	if adv := res.Results[0].Advice; adv != api.AdviceVerify {
		return fmt.Errorf("%s's check answered %s; it should have said verify", n.name, adv)
	}
	s.printf("  %s's check at its own hub says VERIFY: the flag is at home in Norway.\n", n.name)
	if err := s.se.waitFor(ctx, a.name+" receiving the Norwegian flag", func() bool { _, ok := a.arrival(rec.ID); return ok }); err != nil {
		return err
	}
	if adv := a.replica.Lookup(tok); adv.Advice != api.AdviceVerify {
		return fmt.Errorf("%s's replica says %s for the Norwegian number", a.name, adv)
	}
	s.printf("  The Norwegian hub delivers its record back to the Swedish hub, which fans it out: %s's\n", a.name)
	s.printf("  replica holds the flag too, signed by the Norwegian hub.\n")
	return nil
}

// showLogs is step 6: each hub's regulator verifies its exchange log; the
// Swedish log holds the Norwegian hub's relayed requests, for Bank N, and
// the Norwegian log Bank N's, each naming the other hub; neither holds
// the personnummer or its token.
func (s *hubsStory) showLogs(ctx context.Context) error {
	s.printf("\nStep 6. What the two exchange logs hold.\n")
	for _, c := range []struct {
		d    *demo
		want []protocol.LogAction
		what string
	}{
		{s.se, []protocol.LogAction{protocol.LogPeerRegistered, protocol.LogFlagPlaced, protocol.LogPeerTokens, protocol.LogPeerCheck, protocol.LogFlagLifted, protocol.LogWriteRelayed},
			"the Swede's flag, hub-no's relayed token batch and checks for Bank N, and Bank A's\n  flag relayed to hub-no"},
		{s.no, []protocol.LogAction{protocol.LogPeerRegistered, protocol.LogTokens, protocol.LogCheck, protocol.LogPeerTokens, protocol.LogFlagPlaced, protocol.LogPeerEvent},
			"the Swedish records it took and fanned out, Bank N's token batch and checks sent on to\n  hub-se, and the Norwegian's flag, placed for hub-se.bank-a"},
	} {
		rep, lines, err := c.d.verifyExchangeLog(ctx)
		if err != nil {
			return err
		}
		st := &flagStory{demo: c.d, tok: s.tok}
		if err := st.noPersonalData(lines); err != nil {
			return err
		}
		for _, act := range c.want {
			if rep.Actions[act] == 0 {
				return fmt.Errorf("the %s log has no %s entry", c.d.jurisdiction, act)
			}
		}
		s.printf("  %s: %d entries, signature and tree verified by %s. They hold\n", c.d.jurisdiction, rep.New.Size, c.d.regulatorName)
		s.printf("  %s, and neither the personnummer nor its token.\n", c.what)
	}
	return nil
}
