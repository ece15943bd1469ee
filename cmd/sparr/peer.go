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
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

func peerCommands() []*command {
	return []*command{
		{name: "key", summary: "create this hub's signing key for a peer, in DIR/keys/peers", run: runPeerKey},
		{name: "add", summary: "register a peered hub, home to another country's identifiers", run: runPeerAdd},
		{name: "list", summary: "list the peered hubs", run: runPeerList},
		{name: "remove", summary: "remove a peered hub registered with add", run: runPeerRemove},
		{name: "subscribe", summary: "subscribe this hub to a peer's events, as its member there", run: runPeerSubscribe},
	}
}

// peerKeysDir is where a data directory keeps the hub's private keys for
// its peers: on every node, never in the hub's replicated state.
func peerKeysDir(data string) string { return filepath.Join(keysDir(data), "peers") }

func runPeerKey(_ context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--data DIR PEER-ID",
		"Key creates this hub's private signing key for the peer PEER-ID in\nDIR/keys/peers/PEER-ID.jwk (mode 0600) and prints its public JWK Set: give it\nto the peer's operator, who registers this hub with sparr member add --roles peer\n--jwks FILE. Copy the private file to DIR/keys/peers of every node of this hub.")
	data := fs.String("data", "", "the hub's data `DIR` (required)")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(name, args)
	if err != nil {
		return err
	}
	if *data == "" {
		return usagef("%s: missing --data DIR, the hub's data directory", name)
	}
	file := id + ".jwk"
	if (&api.PeerRequest{ID: id, Jurisdiction: "XX", URL: "https://x", Member: "x", KeyFile: file, Token: protocol.TokenPublicKey{Suite: "x", Epoch: 1, Key: []byte{1}}}).Validate() != nil {
		return usagef("%s: %q is not a peer id: lower-case letters, digits and '-', starting with a letter, such as hub-no", name, id)
	}
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		return err
	}
	private, err := key.MarshalPrivateJWK()
	if err != nil {
		return err
	}
	dir := peerKeysDir(*data)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, file)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; a peer key is never overwritten (remove it first if the peer no longer knows it)", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(private); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	ks, err := protocol.NewKeySet(key.Public())
	if err != nil {
		return err
	}
	pub, err := ks.MarshalJSON()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Created %s (key id %s). Its public key set follows: give it to %s's operator.\n", path, key.KeyID(), id)
	_, err = fmt.Fprintf(e.stdout, "%s\n", pub)
	return err
}

func runPeerAdd(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --id ID --jurisdiction CC --url URL --member ID [--key-file NAME] [--token FILE] [--event-types T,…] [--identifier-types T,…] [--suspicions-legal-basis TEXT] [--json]",
		"Add registers a peered hub with this hub through its admin API: the home hub of\nanother country's identifiers, to which this hub relays its members' requests\nfor them (docs/peering.md). Its token key is --token's, or else read from the\npeer's discovery document at --url and printed, to compare with what the peer's\noperator says it is. The registration is logged (peer-registered) and used at once.")
	var h hubFlags
	h.register(fs)
	id := fs.String("id", "", "the peer's `ID` in this hub's logs, such as hub-no (required)")
	jur := fs.String("jurisdiction", "", "the peer's country, ISO 3166-1 alpha-2 (`CC`, such as NO; required)")
	peerURL := fs.String("url", "", "the peer's issuer `URL` (required)")
	memberID := fs.String("member", "", "this hub's member `ID` at the peer (required)")
	keyFile := fs.String("key-file", "", "`NAME` of this hub's private key for the peer in DIR/keys/peers of every node")
	fs.note("key-file", "ID.jwk, as sparr peer key made it")
	tokenFile := fs.String("token", "", "`FILE` with the peer's token key, the token member of its discovery document")
	events := fs.String("event-types", "", "comma-separated event `TYPES` that flow (default: the flag events)")
	types := fs.String("identifier-types", "", "comma-separated identifier `TYPES` that flow (default: every type)")
	basis := fs.String("suspicions-legal-basis", "", "the legal `BASIS` on which suspicions flow with this peer (default: they never do)")
	asJSON := fs.Bool("json", false, "print the hub's JSON answer instead of text")
	fs.commandLineOnly("id", "jurisdiction", "url", "member", "key-file", "token", "event-types", "identifier-types", "suspicions-legal-basis")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	for flag, v := range map[string]string{"id": *id, "jurisdiction": *jur, "url": *peerURL, "member": *memberID} {
		if v == "" {
			return usagef("%s: missing --%s", name, flag)
		}
	}
	if *keyFile == "" {
		*keyFile = *id + ".jwk"
	}
	req := api.PeerRequest{ID: *id, Jurisdiction: *jur, URL: strings.TrimSuffix(*peerURL, "/"), Member: *memberID, KeyFile: *keyFile,
		Policy: api.PeerPolicy{SuspicionsLegalBasis: *basis}}
	for s := range strings.SplitSeq(*events, ",") {
		if s = strings.TrimSpace(s); s != "" {
			req.Policy.EventTypes = append(req.Policy.EventTypes, protocol.EventType(s))
		}
	}
	for s := range strings.SplitSeq(*types, ",") {
		if s = strings.TrimSpace(s); s != "" {
			req.Policy.IdentifierTypes = append(req.Policy.IdentifierTypes, protocol.IdentifierType(s))
		}
	}
	if err := h.check(name); err != nil {
		return err
	}
	form := req
	form.Token = protocol.TokenPublicKey{Suite: "-", Epoch: 1, Key: []byte{1}}
	if err := form.Validate(); err != nil {
		return usagef("%s: %v", name, strings.TrimPrefix(err.Error(), api.ErrInvalidPeer.Error()+": "))
	}
	fetched := false
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("read the peer's token key: %w", err)
		}
		if err := json.Unmarshal(b, &req.Token); err != nil {
			return fmt.Errorf("%s: %w; give the token member of the peer's discovery document", *tokenFile, err)
		}
	} else {
		if req.Token, err = fetchPeerToken(ctx, req.URL); err != nil {
			return err
		}
		fetched = true
	}
	if err := req.Validate(); err != nil {
		return usagef("%s: %v", name, strings.TrimPrefix(err.Error(), api.ErrInvalidPeer.Error()+": "))
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	added, err := c.AddPeer(ctx, req)
	if err != nil {
		return hubError(h.hub, err)
	}
	if *asJSON {
		return printJSON(e.stdout, added)
	}
	if fetched {
		fmt.Fprintf(e.stdout, "Read %s's token key from %s%s: epoch %d, key %s.\nCompare it with what %s's operator says it is.\n\n",
			req.ID, req.URL, api.ConfigurationPath, req.Token.Epoch, req.Token.Key, req.ID)
	}
	return printPeers(e.stdout, []*api.Peer{added.Peer}, added.LogIndex)
}

// fetchPeerToken reads the token key of the discovery document at the
// issuer URL peer.
func fetchPeerToken(ctx context.Context, peer string) (protocol.TokenPublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, peer+api.ConfigurationPath, nil)
	if err != nil {
		return protocol.TokenPublicKey{}, usagef("--url %q: %v", peer, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return protocol.TokenPublicKey{}, fmt.Errorf("cannot read the peer's discovery document: %v; check --url, or give --token FILE", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return protocol.TokenPublicKey{}, fmt.Errorf("%s%s answered %d, not a hub's discovery document; check --url, or give --token FILE", peer, api.ConfigurationPath, resp.StatusCode)
	}
	var conf api.Configuration
	if err := json.Unmarshal(body, &conf); err != nil {
		return protocol.TokenPublicKey{}, fmt.Errorf("%s%s is not a hub's discovery document; check --url", peer, api.ConfigurationPath)
	}
	if strings.TrimSuffix(conf.Issuer, "/") != peer {
		return protocol.TokenPublicKey{}, fmt.Errorf("%s%s names the issuer %q; give --url as the peer's issuer", peer, api.ConfigurationPath, conf.Issuer)
	}
	return conf.Token, nil
}

func runPeerList(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL [--json]", "List prints the hub's peered hubs: those of its peers file, then those registered\nwith sparr peer add.")
	var h hubFlags
	h.register(fs)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer instead of text")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	ps, err := c.Peers(ctx)
	if err != nil {
		return hubError(h.hub, err)
	}
	if *asJSON {
		return printJSON(e.stdout, api.PeersResponse{Peers: ps})
	}
	if len(ps) == 0 {
		_, err := fmt.Fprintln(e.stdout, "No peers.")
		return err
	}
	return printPeers(e.stdout, ps, 0)
}

func runPeerRemove(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "PEER-ID --hub URL [--json]", "Remove removes a peer registered with sparr peer add: nothing more is relayed to\nit. The removal is logged (peer-removed).")
	var h hubFlags
	h.register(fs)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer instead of text")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("%s: give one peer id, as in %s hub-no", name, program(name))
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	removed, err := c.RemovePeer(ctx, args[0])
	if errors.Is(err, client.ErrNotFound) {
		return fmt.Errorf("no peer %q registered with sparr peer add; see sparr peer list", args[0])
	}
	if err != nil {
		return hubError(h.hub, err)
	}
	if *asJSON {
		return printJSON(e.stdout, removed)
	}
	_, err = fmt.Fprintf(e.stdout, "Removed peer %s (%s), log index %d.\n", removed.Peer.ID, removed.Peer.Jurisdiction, removed.LogIndex)
	return err
}

// printPeers prints peers as a table.
func printPeers(w io.Writer, ps []*api.Peer, logIndex uint64) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tJURISDICTION\tURL\tMEMBER THERE\tTOKEN EPOCH\tSOURCE\tKEY")
	for _, p := range ps {
		key := p.KeyID
		if p.KeyFile != "" {
			key = p.KeyFile + " (" + p.KeyID + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", p.ID, p.Jurisdiction, p.URL, p.Member, p.Token.Epoch, p.Source, key)
	}
	if logIndex != 0 {
		fmt.Fprintf(tw, "\nLOG INDEX\t%d\n", logIndex)
	}
	return tw.Flush()
}

func runPeerSubscribe(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "PEER-ID --hub URL --data DIR",
		"Subscribe registers this hub's webhook endpoint at the peer PEER-ID, as this hub's\nmember there: the URL of this hub's POST "+peering.EventsPath+". The peer then\ndelivers the records of its identifiers that its policy lets flow, and this hub\nfans them out to its members (docs/peering.md). It reads the peer's registration\nfrom --hub and this hub's key for the peer from DIR/keys/peers.")
	var h hubFlags
	h.register(fs)
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usagef("%s: give one peer id, as in %s hub-no", name, program(name))
	}
	if h.data == "" {
		return usagef("%s: missing --data DIR, where DIR/keys/peers holds this hub's key for the peer", name)
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	conf, err := c.Configuration(ctx)
	if err != nil {
		return hubError(h.hub, err)
	}
	ps, err := c.Peers(ctx)
	if err != nil {
		return hubError(h.hub, err)
	}
	var p *api.Peer
	for _, q := range ps {
		if q.ID == args[0] {
			p = q
		}
	}
	switch {
	case p == nil:
		return fmt.Errorf("no peer %q at %s; see sparr peer list", args[0], h.hub)
	case p.KeyFile == "":
		return fmt.Errorf("peer %q comes from the peers file: register the endpoint with its key file, as its member (docs/peering.md)", p.ID)
	}
	b, err := os.ReadFile(filepath.Join(peerKeysDir(h.data), p.KeyFile))
	if err != nil {
		return fmt.Errorf("read this hub's key for %s: %w", p.ID, err)
	}
	key, err := protocol.ParseSigningKey(b)
	if err != nil {
		return fmt.Errorf("%s: %w", p.KeyFile, err)
	}
	at, err := connect(ctx, p.URL, p.Member, key, client.Retry{Attempts: 1})
	if err != nil {
		return err
	}
	endpoint := strings.TrimSuffix(conf.Issuer, "/") + peering.EventsPath
	if _, _, err := at.RegisterEndpoint(ctx, endpoint); err != nil {
		return hubError(p.URL, err)
	}
	_, err = fmt.Fprintf(e.stdout, "Subscribed at %s (%s) as %s: it delivers to %s.\n", p.ID, p.URL, p.Member, endpoint)
	return err
}
