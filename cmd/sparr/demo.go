package main

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/client/replica"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/internal/procnode"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

// demoPersonnummer is the consumer's personnummer in the demo: a valid
// test number from protocol/testdata, of someone born in 1909.
const demoPersonnummer = "19090527+1474"

// demoWait bounds each wait of the demo for something that takes
// milliseconds when all is well.
var demoWait = 10 * time.Second

// demoSkip, if set, makes the demo leave out the action of a step, so
// that a test can see the step fail.
var demoSkip func(step int) bool

func runDemo(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "[--members N] [--scam | --hubs se,no | --cluster N]",
		"Demo starts a hub and N member banks on this machine, in a temporary directory, and\n"+
			"tells the story of one consumer's protection flag, step by step: placed at Bank A,\n"+
			"pushed to every bank, checked by Bank B, thawed for Bank C, lifted, and what the\n"+
			"exchange log keeps of it. With --cluster N the hub is N sparr serve --cluster processes,\n"+
			"and the demo kills their leader with SIGKILL in the middle of the story.\n"+
			"It exits 0 only if every step behaved as told.")
	members := fs.Int("members", 3, "how many member banks take part, `N` from 3 to 26")
	nodes := fs.Int("cluster", 0, "run the hub as a cluster of `N` nodes (3 to 7), separate processes of this binary, and kill the leader in the middle of the story")
	scam := fs.Bool("scam", false, "tell the story of a scam payment instead: a mule account shared under the PSR, a warning before the next payment, and a recall routed to the account's bank")
	hubs := fs.String("hubs", "", "tell the story across a border instead: `se,no`, a Swedish and a Norwegian hub, peered, each with its bank (docs/peering.md)")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	if *hubs != "" {
		return runHubsDemo(ctx, e, name, *hubs)
	}
	if *members < 3 || *members > 26 {
		return usagef("%s: --members %d: the story needs 3 to 26 banks", name, *members)
	}
	if fs.given("cluster") && (*nodes < 3 || *nodes > 7) {
		return usagef("%s: --cluster %d: a cluster that survives losing a node has 3 to 7 nodes", name, *nodes)
	}
	if *nodes > 0 && *scam {
		return usagef("%s: --cluster tells the flag story; drop --scam", name)
	}
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	d := &demo{out: e.stdout, n: *members, clusterSize: *nodes}
	defer d.close()
	if err := d.start(ctx); err != nil {
		return fmt.Errorf("demo: setting up: %w", err)
	}
	if *scam {
		return d.scamStory(ctx)
	}
	return d.story(ctx)
}

// A demo is a hub and its banks, all in this process.
type demo struct {
	out io.Writer
	n   int

	dir       string
	store     *store.Store
	hub       *server.Hub
	srv       *http.Server
	issuer    string
	logKey    string
	banks     []*demoBank
	regulator *client.Client

	// jurisdiction, firstBank and regulatorName set up one of the hubs of
	// the cross-border story (demo_hubs.go): the hub's country, the letter
	// of its first bank ('A' if 0), and its regulator's name.
	jurisdiction  string
	firstBank     rune
	regulatorName string
	admin         *client.Client // the operator's client

	// clusterSize is the number of nodes of a cluster demo (0: the hub
	// in this process); bin is the binary they run, nodes are their
	// processes, urls their URLs.
	clusterSize int
	bin         string
	nodes       []*procnode.Node
	urls        []string
}

// clientConfig is the configuration of a client of the demo's hub: with a
// cluster, over every node's URL.
func (d *demo) clientConfig(id string, key *protocol.SigningKey) client.Config {
	cfg := client.Config{HubURL: d.issuer, MemberID: id, Key: key}
	if len(d.urls) > 1 {
		cfg.HubURLs = d.urls[1:]
		// Ride out an election: a leader is elected within seconds.
		cfg.Retry = client.Retry{Attempts: 60, Backoff: 50 * time.Millisecond, MaxWait: time.Second, AttemptTimeout: 3 * time.Second}
	}
	return cfg
}

// A demoBank is one member bank: its client, its webhook receiver and its
// replica.
type demoBank struct {
	name, id string
	client   *client.Client
	replica  *replica.Replica
	srv      *http.Server

	mu      sync.Mutex
	arrived map[string]time.Time // record id → when the replica had it
	// noticed and denied are the access notices this bank received as a
	// flag's origin, and the denials of its own checks, by check id.
	noticed map[string]noticeArrival
	denied  map[string]time.Time
}

// A noticeArrival is an access notice and when it arrived.
type noticeArrival struct {
	notice protocol.SubjectChecked
	at     time.Time
}

// handle is the bank's webhook callback: apply to the replica, then note
// when.
func (b *demoBank) handle(ctx context.Context, e *client.Event) error {
	if err := b.replica.Apply(ctx, e); err != nil {
		return err
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arrived[e.Record.ID] = now
	if n, ok := e.SubjectChecked(); ok {
		b.noticed[n.CheckID] = noticeArrival{notice: n, at: now}
	}
	if d, ok := e.CheckDenied(); ok {
		b.denied[d.CheckID] = now
	}
	return nil
}

// notice returns the access notice of check id, if it arrived.
func (b *demoBank) notice(id string) (noticeArrival, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, ok := b.noticed[id]
	return n, ok
}

// denial returns when the denial of check id arrived, if it did.
func (b *demoBank) denial(id string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.denied[id]
	return t, ok
}

func (b *demoBank) arrival(recordID string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.arrived[recordID]
	return t, ok
}

// start makes the hub's keys and store in a temporary directory, serves
// the hub on a loopback port, and registers the banks, each with a
// receiver and a replica.
func (d *demo) start(ctx context.Context) error {
	var err error
	if d.dir, err = os.MkdirTemp("", "sparr-demo-"); err != nil {
		return err
	}
	kdir := filepath.Join(d.dir, "keys")
	origin := "demo.sparr.local/log"
	if d.jurisdiction != "" {
		origin = strings.ToLower(d.jurisdiction) + ".demo.sparr.local/log"
	}
	if _, err := keyring.Init(kdir, keyring.Options{LogOrigin: origin}); err != nil {
		return err
	}
	keys, err := keyring.Load(kdir)
	if err != nil {
		return err
	}
	d.logKey = keys.LogVerifier
	if d.clusterSize > 0 {
		if err := d.startNodes(ctx, kdir); err != nil {
			return err
		}
	} else if err := d.startHub(keys, kdir); err != nil {
		return err
	}
	return d.addMembers(ctx, kdir)
}

// startHub starts the hub in this process, on a loopback port, with the
// keys in kdir.
func (d *demo) startHub(keys *keyring.Keys, kdir string) error {
	var err error
	if d.store, err = store.Open(filepath.Join(d.dir, "hub.db"), store.Options{}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	d.issuer = "http://" + ln.Addr().String()
	quiet := slog.New(slog.DiscardHandler)
	d.hub, err = server.New(server.Config{
		Issuer: d.issuer, Store: d.store, Keys: keys, Logger: quiet, AllowInsecureURLs: true,
		// Erasures are published a second after they are made here, not
		// after the day a real hub waits to mix them with every other.
		Policy: decide.Policy{ErasurePeriod: demoErasurePeriod,
			// Bank B holds the accounts of Swedbank's clearing range, for
			// the scam story's recall.
			PayeeBanks: map[string]string{"SE:800": "bank-b"}},
		// The banks' receivers listen on loopback over plain HTTP, as with
		// sparr serve --dev.
		Targets:      webhook.TargetPolicy{AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		Jurisdiction: d.jurisdiction,
		PeerKeyDir:   filepath.Join(kdir, "peers"),
	})
	if err != nil {
		ln.Close()
		return err
	}
	if err := d.hub.Start(); err != nil {
		ln.Close()
		return err
	}
	d.srv = newHTTPServer(d.hub, quiet)
	go d.srv.Serve(ln)
	return nil
}

// addMembers registers the regulator and the banks, with the operator key
// in kdir.
func (d *demo) addMembers(ctx context.Context, kdir string) error {
	op, err := keyring.LoadOperator(keyring.OperatorKeyPath(kdir))
	if err != nil {
		return err
	}
	admin, err := client.New(d.clientConfig(server.OperatorID, op))
	if err != nil {
		return err
	}
	d.admin = admin
	// A regulator, to check the exchange log at the end.
	regName := cmp.Or(d.regulatorName, "Finansinspektionen")
	regKey, err := d.addMember(ctx, admin, "fi", regName, api.RoleRegulator)
	if err != nil {
		return err
	}
	if d.regulator, err = client.New(d.clientConfig("fi", regKey)); err != nil {
		return err
	}
	for i := range d.n {
		letter := string(cmp.Or(d.firstBank, 'A') + rune(i))
		b := &demoBank{name: "Bank " + letter, id: "bank-" + strings.ToLower(letter), arrived: map[string]time.Time{},
			noticed: map[string]noticeArrival{}, denied: map[string]time.Time{}}
		if err := d.addBank(ctx, admin, b); err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		d.banks = append(d.banks, b)
	}
	// Wait until every bank's endpoint has taken the hub's verification
	// event: from then on every record reaches it.
	return d.waitFor(ctx, "every bank's webhook endpoint verified", func() bool {
		for _, b := range d.banks {
			if e, err := b.client.Endpoint(ctx); err != nil || e.Status != api.EndpointActive {
				return false
			}
		}
		return true
	})
}

// addMember registers a member with a new key through the admin API, as
// the operator does with sparr member add.
func (d *demo) addMember(ctx context.Context, admin *client.Client, id, name string, roles ...api.Role) (*protocol.SigningKey, error) {
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
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
	if _, err := admin.AddMember(ctx, api.MemberRequest{ID: id, Name: name, Roles: roles, JWKS: jwks}); err != nil {
		return nil, fmt.Errorf("register %s: %w", name, err)
	}
	return key, nil
}

// addBank registers a bank, opens its replica, and starts its receiver.
func (d *demo) addBank(ctx context.Context, admin *client.Client, b *demoBank) error {
	key, err := d.addMember(ctx, admin, b.id, b.name, api.RoleFlag, api.RoleCheck)
	if err != nil {
		return err
	}
	if b.client, err = client.New(d.clientConfig(b.id, key)); err != nil {
		return err
	}
	if b.replica, err = replica.Open(filepath.Join(d.dir, b.id+".db"), replica.Config{Client: b.client}); err != nil {
		return err
	}
	rcv, err := client.NewReceiver(client.ReceiverConfig{Client: b.client, Handle: b.handle})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /sparr/events", rcv)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go b.srv.Serve(ln)
	secret, _, err := b.client.RegisterEndpoint(ctx, "http://"+ln.Addr().String()+"/sparr/events")
	if err != nil {
		return err
	}
	rcv.SetSecrets(secret)
	return b.replica.Sync(ctx)
}

// close stops everything and removes the temporary directory.
func (d *demo) close() {
	for _, b := range d.banks {
		if b.srv != nil {
			b.srv.Close()
		}
	}
	if d.srv != nil {
		d.srv.Close()
	}
	if d.hub != nil {
		d.hub.Close()
	}
	var wg sync.WaitGroup
	for _, n := range d.nodes {
		wg.Go(func() { n.Stop(10 * time.Second) })
	}
	wg.Wait()
	for _, b := range d.banks {
		if b.replica != nil {
			b.replica.Close()
		}
	}
	if d.store != nil {
		d.store.Close()
	}
	if d.dir != "" {
		os.RemoveAll(d.dir)
	}
}

// waitFor polls cond until it holds, for at most demoWait.
func (d *demo) waitFor(ctx context.Context, what string, cond func() bool) error {
	deadline := time.Now().Add(demoWait)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not happen within %s", what, demoWait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return nil
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

// A stepError is a step that did not behave as told.
type stepError struct {
	step  int
	title string
	err   error
}

func (e *stepError) Error() string {
	return fmt.Sprintf("demo: step %d (%s) did not behave as described: %v", e.step, e.title, e.err)
}

func (e *stepError) Unwrap() error { return e.err }

// story tells the story, step by step, and stops at the first step that
// does not behave as told.
func (d *demo) story(ctx context.Context) error {
	s := &flagStory{demo: d, a: d.banks[0], b: d.banks[1], c: d.banks[2]}
	s.introduce()
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"a consumer asks Bank A to protect their personnummer", s.placeFlag},
		{"every bank receives the signed flag", s.receiveFlag},
		{"a fraudster applies for credit at Bank B", s.stopFraudster},
		{"Bank A asks the consumer about Bank B's check, and the consumer says \"not me\"", s.notMe},
		{"the consumer thaws the flag for an hour to apply for a loan at Bank C", s.thawFlag},
		{"the consumer lifts the flag and every bank forgets it", s.liftFlag},
		{"what the exchange log now holds", s.showLog},
	}
	for i, st := range steps {
		if err := st.run(ctx); err != nil {
			return &stepError{step: i + 1, title: st.title, err: err}
		}
		if i == 2 && d.clusterSize > 0 {
			// In the middle of the story: Bank A's access notice of Bank
			// B's check is on its way.
			if err := s.killLeader(ctx); err != nil {
				return fmt.Errorf("demo: killing the leader: %w", err)
			}
		}
	}
	d.printf("\nAll %d steps behaved as described. The temporary data is being removed.\n", len(steps))
	return nil
}

// A flagStory is the demo's story of one consumer's flag: Banks A, B and
// C, who play a part in it, and what the steps pass on to each other.
type flagStory struct {
	*demo
	a, b, c *demoBank

	tok    protocol.Token      // the consumer's personnummer as a token
	placed *client.WriteResult // the flag as Bank A placed it
	sent   time.Time           // when Bank A sent the flag

	checkID   string    // the fraudster's check at Bank B
	checkedAt time.Time // when the hub answered it
}

// introduce says who takes part.
func (s *flagStory) introduce() {
	s.printf("Spärr demo: one hub and %d member banks, all on this machine.\n", s.n)
	if len(s.nodes) > 0 {
		s.printf("The hub is a cluster of %d nodes, each a sparr process with its own copy of the data,\n", len(s.nodes))
		s.printf("replicated with raft: %s. Each bank runs a webhook receiver for the hub's\n", strings.Join(s.urls, ", "))
	} else {
		s.printf("The hub listens on %s. Each bank runs a webhook receiver for the hub's\n", s.issuer)
	}
	s.printf("signed records and keeps a replica of them, so it can check identities on its own.\n")
}

// placeFlag is step 1: Bank A turns the consumer's personnummer into a
// token and places a flag on it, with the consumer's consent.
func (s *flagStory) placeFlag(ctx context.Context) error {
	a := s.a
	s.printf("\nStep 1. A consumer asks %s to protect their personnummer.\n", a.name)
	s.printf("  They log in to %s's app with BankID and ask for protection; %s records their consent.\n", a.name, a.name)
	toks, err := a.client.Tokenize(ctx, protocol.TypePersonalNumber, demoPersonnummer)
	if err != nil {
		return err
	}
	s.tok = toks[0]
	s.printf("  %s turns %s into an anonymous token; the number itself never leaves the bank.\n", a.name, demoPersonnummer)
	s.sent = time.Now()
	if demoSkip != nil && demoSkip(1) {
		return errors.New("the flag was not placed")
	}
	s.placed, err = a.client.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: s.tok, Consent: demoConsent(a, time.Now())})
	if err != nil {
		return err
	}
	if s.placed.Existing || s.placed.Record == nil {
		return errors.New("the hub did not place a new flag")
	}
	s.printf("  The hub placed the flag until %s, signed it, and wrote it in its exchange log (entry %d).\n",
		s.placed.Flag.ExpiresAt.Format(time.DateOnly), s.placed.LogIndex)
	return nil
}

// demoConsent is the consent bank collects at now: in its app, after a
// BankID login, for two years.
func demoConsent(bank *demoBank, now time.Time) *protocol.Consent {
	return &protocol.Consent{
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now)},
		Notice:     "https://" + bank.id + ".example/privacy/sparr",
		ExpiresAt:  protocol.NewNumericDate(now.AddDate(2, 0, 0)),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", AssuranceLevel: "loa3", Reference: "demo-login-1"},
	}
}

// receiveFlag is step 2: every other bank's replica has the flag, and
// advises to verify the consumer.
func (s *flagStory) receiveFlag(ctx context.Context) error {
	s.printf("\nStep 2. Every bank receives the signed flag.\n")
	for _, bk := range s.banks[1:] {
		if err := s.waitFor(ctx, bk.name+" receiving the flag", func() bool { _, ok := bk.arrival(s.placed.Record.ID); return ok }); err != nil {
			return err
		}
		at, _ := bk.arrival(s.placed.Record.ID)
		if adv := bk.replica.Lookup(s.tok); adv.Advice != api.AdviceVerify {
			return fmt.Errorf("%s's replica says %s", bk.name, adv)
		}
		s.printf("  %s: received it, checked the hub's signature, and stored it, %d ms after %s sent the flag.\n",
			bk.name, at.Sub(s.sent).Milliseconds(), s.a.name)
	}
	return nil
}

// stopFraudster is step 3: Bank B's replica and the hub both advise to
// verify an applicant with the personnummer, Bank B's replica reports its
// check to the hub, and Bank B reports that the applicant could not prove
// who they are.
func (s *flagStory) stopFraudster(ctx context.Context) error {
	b := s.b
	s.printf("\nStep 3. A fraudster applies for credit at %s with that personnummer.\n", b.name)
	toks, err := b.client.Tokenize(ctx, protocol.TypePersonalNumber, "090527+1474")
	if err != nil {
		return err
	}
	if toks[0] != s.tok {
		return fmt.Errorf("%s's token for the number differs from %s's", b.name, s.a.name)
	}
	s.printf("  The application says 090527+1474; %s computes the same token as %s.\n", b.name, s.a.name)
	local, took := timeReplicaCheck(b, s.tok)
	if local.Advice != api.AdviceVerify {
		return fmt.Errorf("%s's replica answered %s; it should have said verify", b.name, local)
	}
	s.printf("  %s's own replica answers in %.1f µs: VERIFY, the person is protected.\n", b.name, float64(took)/1e3)
	if err := reportReplicaChecks(ctx, b); err != nil {
		return err
	}
	s.printf("  The replica reports its check to the hub, which logs it with its purpose, as it logs\n")
	s.printf("  the online check that follows.\n")
	res, err := b.client.Check(ctx, api.PurposeCreditApplication, s.tok)
	if err != nil {
		return err
	}
	s.checkID, s.checkedAt = res.ID, time.Now()
	if adv := res.Results[0].Advice; adv != api.AdviceVerify {
		return fmt.Errorf("the hub answered %s; it should have said verify", adv)
	}
	s.printf("  The hub confirms: VERIFY, with the flag's signed record.\n")
	s.printf("  %s asks the applicant to prove who they are with BankID. The fraudster cannot,\n", b.name)
	s.printf("  so no credit is granted, and %s reports the outcome to the hub.\n", b.name)
	if _, err := b.client.ReportOutcome(ctx, res.ID, api.OutcomeNotVerified); err != nil {
		return err
	}
	return nil
}

// notMe is step 4: Bank A, which placed the flag, receives the signed
// access notice of Bank B's check; its app asks the consumer, who says it
// was not them; Bank A sends the denial, with how the consumer logged in,
// and Bank B receives it while the application is still open.
func (s *flagStory) notMe(ctx context.Context) error {
	a, b := s.a, s.b
	s.printf("\nStep 4. %s's app tells the consumer about %s's check, and the consumer says \"not me\".\n", a.name, b.name)
	if err := s.waitFor(ctx, a.name+" receiving the access notice", func() bool { _, ok := a.notice(s.checkID); return ok }); err != nil {
		return err
	}
	n, _ := a.notice(s.checkID)
	if n.notice.Checker != b.id || n.notice.Purpose != api.PurposeCreditApplication {
		return fmt.Errorf("the notice names %s for %s; it should name %s for %s", n.notice.Checker, n.notice.Purpose, b.id, api.PurposeCreditApplication)
	}
	s.printf("  %s received the hub's signed access notice %d ms after %s's check was answered.\n", a.name, n.at.Sub(s.checkedAt).Milliseconds(), b.name)
	s.printf("  Only %s, which placed the flag, receives it: no other bank learns who checked whom.\n", a.name)
	s.printf("  The app shows: \"%s checked your identity for a credit application at %s. Was this you?\"\n",
		b.name, n.notice.CheckedAt.Time().Local().Format("15:04"))
	s.printf("  The consumer logs in with BankID and answers no.\n")
	auth := protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(time.Now()), Level: protocol.LevelHigh, Reference: "demo-login-2"}
	sent := time.Now()
	res, err := a.client.DenyCheck(ctx, n.notice.CheckID, n.notice.FlagID, auth)
	if err != nil {
		return err
	}
	if err := s.waitFor(ctx, b.name+" receiving the denial", func() bool { _, ok := b.denial(s.checkID); return ok }); err != nil {
		return err
	}
	at, _ := b.denial(s.checkID)
	s.printf("  %s sent the denial, signed, with how the consumer logged in (BankID, level high);\n", a.name)
	s.printf("  %s received the hub's signed check-denied record %d ms later, while the application is open.\n", b.name, at.Sub(sent).Milliseconds())
	again, err := b.client.Check(ctx, api.PurposeCreditApplication, s.tok)
	if err != nil {
		return err
	}
	if d := again.Results[0].Denied; d == nil || len(d.Records) != 1 || d.Records[0].ID != res.Record.ID {
		return errors.New("a later check at Bank B does not show the denial")
	}
	s.printf("  A later check at %s shows the denial beside the advice, for 30 days.\n", b.name)
	return nil
}

// timeReplicaCheck checks tok in bank's replica for a credit application,
// once, as the bank would (the check is recorded, to be reported), and
// returns its advice and how long the replica takes to answer: the mean of
// 10 000 lookups of the same token, which answer as the check does
// without being checks (a lookup is not recorded nor reported; a check
// adds tens of nanoseconds to queue its report).
func timeReplicaCheck(bank *demoBank, tok protocol.Token) (replica.Advice, time.Duration) {
	local := bank.replica.Check(api.PurposeCreditApplication, tok)
	const rounds = 10_000
	start := time.Now()
	for range rounds {
		bank.replica.Lookup(tok)
	}
	return local, time.Since(start) / rounds
}

// reportReplicaChecks has bank's replica report its checks now, as
// replica.Run does every few seconds.
func reportReplicaChecks(ctx context.Context, bank *demoBank) error {
	if err := bank.replica.Flush(ctx); err != nil {
		return err
	}
	if s := bank.replica.Stats(); s.ChecksUnreported != 0 || s.ChecksRefused != 0 {
		return fmt.Errorf("%s's replica left %d checks unreported, and the hub refused %d", bank.name, s.ChecksUnreported, s.ChecksRefused)
	}
	return nil
}

// thawFlag is step 5: Bank C thaws the flag for an hour, and then its
// replica and the hub both advise nothing, because the flag is thawed.
func (s *flagStory) thawFlag(ctx context.Context) error {
	c := s.c
	s.printf("\nStep 5. The consumer thaws the flag for an hour, to apply for a loan at %s.\n", c.name)
	until := time.Now().Add(time.Hour)
	if demoSkip == nil || !demoSkip(5) {
		thawed, err := c.client.ThawFlag(ctx, s.placed.Flag.ID, time.Time{}, until)
		if err != nil {
			return err
		}
		if err := s.waitFor(ctx, c.name+" receiving the thaw", func() bool { _, ok := c.arrival(thawed.Record.ID); return ok }); err != nil {
			return err
		}
	}
	local := c.replica.Check(api.PurposeCreditApplication, s.tok)
	if local.Advice != api.AdviceNone || !local.Thawed {
		return fmt.Errorf("%s's replica answered %s (thawed: %v); it should have said none, thawed", c.name, local, local.Thawed)
	}
	if err := reportReplicaChecks(ctx, c); err != nil {
		return err
	}
	res, err := c.client.Check(ctx, api.PurposeCreditApplication, s.tok)
	if err != nil {
		return err
	}
	if r := res.Results[0]; r.Advice != api.AdviceNone || r.Flag == nil || !r.Flag.Thawed {
		return fmt.Errorf("the hub answered %s; it should have said none, thawed", r.Advice)
	}
	s.printf("  %s's check says NONE: the flag is thawed until %s, so the loan application\n", c.name, local.Flag.ThawUntil.Local().Format("15:04"))
	s.printf("  goes ahead as usual. Its replica and the hub agree.\n")
	return nil
}

// liftFlag is step 6: Bank A lifts the flag, every bank's replica forgets
// it, and the hub no longer serves its records or advises on it.
func (s *flagStory) liftFlag(ctx context.Context) error {
	s.printf("\nStep 6. The consumer lifts the flag at %s: they withdraw their consent.\n", s.a.name)
	liftedAt := time.Now()
	var lift string
	if demoSkip == nil || !demoSkip(6) {
		lifted, err := s.a.client.LiftFlag(ctx, s.placed.Flag.ID)
		if err != nil {
			return err
		}
		lift = lifted.Record.ID
	}
	if err := s.waitForgotten(ctx, lift, liftedAt); err != nil {
		return err
	}
	b := s.b
	if _, err := b.client.Record(ctx, s.placed.Record.ID); !errors.Is(err, client.ErrNotFound) {
		return fmt.Errorf("the hub still serves the placed record (%v)", err)
	}
	res, err := b.client.Check(ctx, api.PurposeAccountOpening, s.tok)
	if err != nil {
		return err
	}
	if adv := res.Results[0].Advice; adv != api.AdviceNone {
		return fmt.Errorf("the hub answered %s after the lift; it should have said none", adv)
	}
	s.printf("  The hub deleted the consent and the flag's earlier records; a check now says NONE.\n")
	return nil
}

// waitForgotten waits until every bank has the lift, the record with id
// lift, and its replica holds no flag, and says how long after liftedAt
// each had it.
func (s *flagStory) waitForgotten(ctx context.Context, lift string, liftedAt time.Time) error {
	for _, bk := range s.banks {
		err := s.waitFor(ctx, bk.name+" forgetting the flag", func() bool {
			_, ok := bk.arrival(lift)
			return ok && bk.replica.Lookup(s.tok).Flag == nil && bk.replica.Stats().Flags == 0
		})
		if err != nil {
			return err
		}
		at, _ := bk.arrival(lift)
		s.printf("  %s: its replica no longer holds the flag or any of its records (%d ms after the lift).\n",
			bk.name, at.Sub(liftedAt).Milliseconds())
	}
	return nil
}

// showLog is step 7: the regulator verifies the exchange log, which holds
// neither the personnummer nor its token but an entry for each action of
// the story.
func (s *flagStory) showLog(ctx context.Context) error {
	s.printf("\nStep 7. What the exchange log now holds.\n")
	if err := s.publishErasures(ctx); err != nil {
		return err
	}
	rep, lines, err := s.verifyExchangeLog(ctx)
	if err != nil {
		return err
	}
	if err := s.noPersonalData(lines); err != nil {
		return err
	}
	s.printf("  The hub signed a checkpoint of its log: %d entries. Finansinspektionen, the regulator,\n", rep.New.Size)
	s.printf("  checked the hub's signature on it and recomputed it from every entry: they match.\n")
	s.printf("  No entry holds the personnummer or its token. Entries by action:\n")
	s.printActions(rep)
	for _, want := range []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogCheck, protocol.LogReplicaCheck, protocol.LogFlagThawed, protocol.LogFlagLifted, protocol.LogTokens, protocol.LogDelivery, protocol.LogErased} {
		if rep.Actions[want] == 0 {
			return fmt.Errorf("the log has no %s entry", want)
		}
	}
	return nil
}

// demoErasurePeriod is the demo hub's erasure period: a second.
const demoErasurePeriod = time.Second

// publishErasures waits for the erasure period of the lift to end and has
// the hub publish its tombstones, as its jobs do on their schedule.
func (s *flagStory) publishErasures(ctx context.Context) error {
	next := time.Now().Truncate(demoErasurePeriod).Add(demoErasurePeriod)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(next)):
	}
	if s.demo.hub != nil {
		if err := s.demo.hub.RunJobs(); err != nil {
			return err
		}
	}
	s.printf("  The lift erased the details of every entry that named the consumer at once. The hub\n")
	s.printf("  says so in tombstones, published together for every erasure of a period, after it ends\n")
	s.printf("  (a day on a real hub, a second here), so that no reader can tell whose entries they were.\n")
	return nil
}

// noPersonalData fails if a log entry holds the consumer's personnummer
// or its token.
func (s *flagStory) noPersonalData(lines [][]byte) error {
	for _, l := range lines {
		if strings.Contains(string(l), s.tok.String()) || strings.Contains(string(l), base64.RawURLEncoding.EncodeToString(s.tok.Value[:])[:16]) ||
			strings.Contains(string(l), "19090527") || strings.Contains(string(l), "0905271474") {
			return fmt.Errorf("log entry %q holds the personnummer or its token", strings.TrimSpace(string(l)))
		}
	}
	return nil
}

// printActions prints how many entries the log has of each action, the
// most frequent first, with what the action means.
func (s *flagStory) printActions(rep *protocol.LogReport) {
	actions := make([]protocol.LogAction, 0, len(rep.Actions))
	for act := range rep.Actions {
		actions = append(actions, act)
	}
	slices.SortFunc(actions, func(x, y protocol.LogAction) int {
		if rep.Actions[x] != rep.Actions[y] {
			return int(rep.Actions[y]) - int(rep.Actions[x])
		}
		return strings.Compare(string(x), string(y))
	})
	for _, act := range actions {
		s.printf("    %4d  %-20s %s\n", rep.Actions[act], act, logActions[act])
	}
}

// logActions explain the exchange log's actions that the story makes.
var logActions = map[protocol.LogAction]string{
	protocol.LogMemberAdded:        "the operator registered a bank or the regulator",
	protocol.LogEndpointRegistered: "a bank registered its webhook receiver",
	protocol.LogTokens:             "a bank turned identifiers into tokens (counted, never shown)",
	protocol.LogFlagPlaced:         "the flag was placed, with the consumer's consent",
	protocol.LogDelivery:           "a signed record reached a bank's receiver",
	protocol.LogCheck:              "a bank checked an identity, with its purpose",
	protocol.LogReplicaCheck:       "a bank's replica answered checks, reported in a batch, with their purposes",
	protocol.LogCheckOutcome:       "a bank reported what came of a check",
	protocol.LogFlagThawed:         "the flag was thawed",
	protocol.LogFlagLifted:         "the flag was lifted",
	protocol.LogErased:             "a tombstone: an earlier entry's details were erased; the entry stays, linked to no one",
}

// verifyExchangeLog has the hub sign a checkpoint of its exchange log now,
// as it does on its interval, and checks it as a regulator does (sparr log
// verify): the signature against the hub's log key, and the root
// recomputed from every entry. It returns the verification's report and
// the entries as served.
func (d *demo) verifyExchangeLog(ctx context.Context) (*protocol.LogReport, [][]byte, error) {
	if d.hub == nil {
		// A cluster's leader signs on its own interval, and publishes
		// the erasures on its job interval.
		return d.waitLogged(ctx, []protocol.LogAction{protocol.LogFlagLifted, protocol.LogErased})
	}
	if _, err := d.hub.PublishCheckpoint(); err != nil {
		return nil, nil, err
	}
	key, err := protocol.NewLogVerifier(d.logKey)
	if err != nil {
		return nil, nil, err
	}
	f := &keptLog{LogFetcher: d.regulator.Log()}
	_, rep, err := (&protocol.LogAuditor{Fetcher: f, Key: key}).Verify(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	return rep, f.lines, nil
}

// keptLog keeps the entries a verification fetches.
type keptLog struct {
	protocol.LogFetcher
	lines [][]byte
}

func (k *keptLog) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	lines, err := k.LogFetcher.Entries(ctx, start, end)
	k.lines = append(k.lines, lines...)
	return lines, err
}
