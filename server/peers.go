package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
)

// DefaultPeerRefresh is how often the hub reads each peer's discovery
// document for its current token key when Config.PeerRefresh is 0: the
// documents' own max-age.
const DefaultPeerRefresh = 5 * time.Minute

// maxPeerConfiguration bounds a peer's discovery document.
const maxPeerConfiguration = 1 << 20

// A peerTable is the hub's view of its peers beyond the peers file: the
// peers registered through the API, built once per registration (their
// signing keys read from the node's peer key directory), and the token
// keys learnt from each peer's discovery document.
type peerTable struct {
	mu     sync.Mutex
	built  map[string]builtPeer
	tokens map[string][]protocol.TokenPublicKey // by peer id: the previous and current key learnt, oldest first
}

// A builtPeer is a peer registered through the API, as the relay uses it,
// with the registration it was built from.
type builtPeer struct {
	kid     string
	created time.Time
	peer    *peering.Peer
}

func newPeerTable() *peerTable {
	return &peerTable{built: map[string]builtPeer{}, tokens: map[string][]protocol.TokenPublicKey{}}
}

// peers returns every peer of the hub: those of the peers file, then those
// registered through the API (their token keys as registered: see
// [Hub.peerToken] for the newest). A registered peer whose key file this node cannot read is
// left out (and logged): the hub cannot sign for it.
func (h *Hub) peers() []*peering.Peer {
	out := append([]*peering.Peer(nil), h.cfg.Peers...)
	stored, err := h.store.RegisteredPeers()
	if err != nil {
		h.log.Error("read peers", "error", err)
		return out
	}
	for _, reg := range stored {
		p, err := h.buildPeer(reg)
		if err != nil {
			h.log.Error("peer registered through the API is not usable on this node", "peer", reg.ID, "error", err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// buildPeer returns the relay's peer for a registration, building it
// once: its signing key is read from the peer key directory and must be
// the key registered (same key id).
func (h *Hub) buildPeer(reg *api.Peer) (*peering.Peer, error) {
	created := time.Time{}
	if reg.CreatedAt != nil {
		created = *reg.CreatedAt
	}
	h.peerTable.mu.Lock()
	b, ok := h.peerTable.built[reg.ID]
	h.peerTable.mu.Unlock()
	if ok && b.kid == reg.KeyID && b.created.Equal(created) {
		return b.peer, nil
	}
	key, err := h.readPeerKey(reg.KeyFile)
	if err != nil {
		return nil, err
	}
	if key.KeyID() != reg.KeyID {
		return nil, fmt.Errorf("key file %s holds key %s, not the registered %s", reg.KeyFile, key.KeyID(), reg.KeyID)
	}
	p := &peering.Peer{ID: reg.ID, Jurisdiction: reg.Jurisdiction, URL: reg.URL, Member: reg.Member, Key: key,
		Token: reg.Token, Policy: peering.Policy(reg.Policy), Timeout: h.cfg.PeerTimeout}
	if err := p.Check(); err != nil {
		return nil, err
	}
	h.peerTable.mu.Lock()
	h.peerTable.built[reg.ID] = builtPeer{kid: reg.KeyID, created: created, peer: p}
	h.peerTable.mu.Unlock()
	return p, nil
}

// readPeerKey reads the private signing key in the file name of the peer
// key directory, and nothing outside it.
func (h *Hub) readPeerKey(name string) (*protocol.SigningKey, error) {
	if h.cfg.PeerKeyDir == "" {
		return nil, errors.New("this hub has no peer key directory (server.Config.PeerKeyDir; sparr serve: DIR/keys/peers)")
	}
	root, err := os.OpenRoot(h.cfg.PeerKeyDir)
	if err != nil {
		return nil, fmt.Errorf("peer key directory: %w", err)
	}
	defer root.Close()
	f, err := root.Open(name)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	} else if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key file %s: %w: mode %04o; chmod 600 it", name, errKeyFileMode, fi.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	key, err := protocol.ParseSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	return key, nil
}

// peerToken returns the newest token key the hub knows of p: the one
// learnt from its discovery document, if newer than the one registered.
func (h *Hub) peerToken(p *peering.Peer) protocol.TokenPublicKey {
	h.peerTable.mu.Lock()
	keys := h.peerTable.tokens[p.ID]
	h.peerTable.mu.Unlock()
	if len(keys) == 0 || keys[len(keys)-1].Epoch <= p.Token.Epoch {
		return p.Token
	}
	return keys[len(keys)-1]
}

// peerEpoch returns epoch if the hub relays requests of that epoch to p:
// p's current key's, or the key before it during a rotation's overlap.
// Otherwise it returns the current epoch, which the request is then
// checked against (and refused for).
func (h *Hub) peerEpoch(p *peering.Peer, epoch uint32) uint32 {
	current := h.peerToken(p).Epoch
	if epoch == current {
		return epoch
	}
	h.peerTable.mu.Lock()
	keys := h.peerTable.tokens[p.ID]
	h.peerTable.mu.Unlock()
	for _, k := range keys {
		if k.Epoch == epoch {
			return epoch
		}
	}
	return current
}

// RefreshPeerTokens reads every peer's discovery document and takes its
// token key if its epoch is newer than the newest the hub knows: the hub
// then relays requests of the new epoch and, through the overlap, of the
// one before. It returns the errors of the peers it could not read (the
// others are refreshed all the same).
func (h *Hub) RefreshPeerTokens(ctx context.Context) error {
	var errs []error
	for _, p := range h.peers() {
		if err := h.refreshPeerToken(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refreshPeerToken reads p's discovery document, over the connection the
// relay itself uses (TLS to the issuer URL the operator registered), and
// takes its token key when its epoch is newer than the newest known. A
// document of another issuer, a key that does not parse, or a different
// key under a known epoch is refused (and logged): the pinned keys stay.
func (h *Hub) refreshPeerToken(ctx context.Context, p *peering.Peer) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = peering.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.URL, "/")+api.ConfigurationPath, nil)
	if err != nil {
		return fmt.Errorf("peer %s: %w", p.ID, err)
	}
	resp, err := h.cfg.PeerClient.Do(req)
	if err != nil {
		return fmt.Errorf("peer %s: configuration: %w", p.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("peer %s: configuration: status %d", p.ID, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxPeerConfiguration))
	if err != nil {
		return fmt.Errorf("peer %s: configuration: %w", p.ID, err)
	}
	tok, err := PeerTokenKey(data, p.URL)
	if err != nil {
		h.log.Warn("refused a peer's token key", "peer", p.ID, "error", err)
		return fmt.Errorf("peer %s: %w", p.ID, err)
	}
	return h.learnPeerToken(p, tok)
}

// learnPeerToken takes tok as p's current token key if its epoch is newer
// than the newest known, keeping that one for the overlap; a different
// key under the newest known epoch is refused.
func (h *Hub) learnPeerToken(p *peering.Peer, tok protocol.TokenPublicKey) error {
	known := h.peerToken(p)
	switch {
	case tok.Epoch < known.Epoch:
		return nil
	case tok.Epoch == known.Epoch:
		if tok.Suite != known.Suite || !slices.Equal(tok.Key, known.Key) {
			h.log.Warn("a peer's token key changed without a new epoch; keeping the one known", "peer", p.ID, "epoch", tok.Epoch)
			return fmt.Errorf("peer %s: another token key under the known epoch %d", p.ID, tok.Epoch)
		}
		return nil
	}
	h.peerTable.mu.Lock()
	h.peerTable.tokens[p.ID] = []protocol.TokenPublicKey{known, tok}
	h.peerTable.mu.Unlock()
	h.log.Info("a peer rotated its token key", "peer", p.ID, "epoch", tok.Epoch, "previous_epoch", known.Epoch)
	return nil
}

// PeerTokenKey reads the token key of a peer's discovery document, which
// must be the document of issuer. It is the parser behind the hub's key
// refresh.
func PeerTokenKey(data []byte, issuer string) (protocol.TokenPublicKey, error) {
	var conf struct {
		Issuer string                  `json:"issuer"`
		Token  protocol.TokenPublicKey `json:"token"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return protocol.TokenPublicKey{}, fmt.Errorf("configuration: %w", err)
	}
	if strings.TrimSuffix(conf.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return protocol.TokenPublicKey{}, fmt.Errorf("configuration of issuer %q, want %q", conf.Issuer, issuer)
	}
	if _, err := protocol.NewTokenClient(conf.Token); err != nil {
		return protocol.TokenPublicKey{}, fmt.Errorf("configuration: %w", err)
	}
	return conf.Token, nil
}

// runPeerRefresh refreshes the peers' token keys every
// Config.PeerRefresh until stop closes: the leader's work, since only the
// leader relays.
func (h *Hub) runPeerRefresh(stop <-chan struct{}) {
	t := time.NewTicker(h.cfg.PeerRefresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if err := h.RefreshPeerTokens(context.Background()); err != nil {
			h.log.Warn("peer token key refresh", "error", err)
		}
	}
}

// apiPeers returns every peer as the operator API shows it.
func (h *Hub) apiPeers() ([]*api.Peer, error) {
	var out []*api.Peer
	for _, p := range h.cfg.Peers {
		out = append(out, &api.Peer{PeerRequest: api.PeerRequest{ID: p.ID, Jurisdiction: p.Jurisdiction, URL: p.URL, Member: p.Member,
			Token: p.Token, Policy: api.PeerPolicy(p.Policy)}, KeyID: p.Key.KeyID(), Source: api.PeerFromFile})
	}
	stored, err := h.store.RegisteredPeers()
	if err != nil {
		return nil, err
	}
	return append(out, stored...), nil
}

// listPeers: GET /v1/admin/peers.
func (h *Hub) listPeers(c *gin.Context) {
	ps, err := h.apiPeers()
	if err != nil {
		h.internal(c, "list peers", err)
		return
	}
	if ps == nil {
		ps = []*api.Peer{}
	}
	for _, p := range ps {
		p.Token = h.peerToken(&peering.Peer{ID: p.ID, Token: p.Token})
	}
	c.JSON(http.StatusOK, api.PeersResponse{Peers: ps})
}

// registerPeer: POST /v1/admin/peers. The key file must hold a private
// signing key in this node's peer key directory; the registration keeps
// its name and key id, never the key.
func (h *Hub) registerPeer(c *gin.Context) {
	var req api.PeerRequest
	if !h.readJSON(c, &req) {
		return
	}
	ps, err := h.apiPeers()
	if err != nil {
		h.internal(c, "list peers", err)
		return
	}
	kid := ""
	if err := req.Validate(); err == nil {
		key, err := h.readPeerKey(req.KeyFile)
		if err != nil {
			detail := "cannot be read here: " + peerKeyError(err)
			h.fail(c, decide.FieldProblem(protocol.ProblemValidation, "key_file", "%s", detail))
			return
		}
		kid = key.KeyID()
	}
	cmd, err := h.decide.RegisterPeer(member(c), h.cfg.Jurisdiction, ps, req, kid, h.now())
	h.putPeer(c, cmd, err, http.StatusCreated)
}

// errKeyFileMode is returned by readPeerKey for a key file that others
// than its owner may read, which the hub refuses as it refuses its own.
var errKeyFileMode = errors.New("readable by others than its owner")

// peerKeyError says why a key file could not be used, without the
// directory's path.
func peerKeyError(err error) string {
	switch {
	case errors.Is(err, errKeyFileMode):
		return "readable by others than its owner; chmod 600 it, as every key file"
	case errors.Is(err, fs.ErrNotExist):
		return "no such file in the peer key directory; put this hub's private JWK for the peer there on every node"
	case strings.Contains(err.Error(), "no peer key directory"):
		return "this hub has no peer key directory"
	}
	return "not a private signing key (a JWK with its private part)"
}

// removePeer: DELETE /v1/admin/peers/{id}.
func (h *Hub) removePeer(c *gin.Context) {
	stored, err := h.store.RegisteredPeers()
	if err != nil {
		h.internal(c, "list peers", err)
		return
	}
	id := c.Param("id")
	var p *api.Peer
	for _, s := range stored {
		if s.ID == id {
			p = s
		}
	}
	if p == nil && slices.ContainsFunc(h.cfg.Peers, func(fp *peering.Peer) bool { return fp.ID == id }) {
		p = &api.Peer{PeerRequest: api.PeerRequest{ID: id}, Source: api.PeerFromFile}
	}
	cmd, err := h.decide.RemovePeer(member(c), id, p, h.now())
	h.putPeer(c, cmd, err, http.StatusOK)
}

// putPeer applies a peer change and answers with the peer.
func (h *Hub) putPeer(c *gin.Context, cmd *state.PutPeer, err error, status int) {
	if err != nil {
		h.refuse(c, "peer change", err)
		return
	}
	res, err := h.commit(cmd)
	switch {
	case err != nil:
		h.internal(c, "apply "+string(cmd.Entry.Action), err)
		return
	case res.Conflict:
		h.fail(c, decide.PeerConflict(cmd))
		return
	}
	h.peerTable.mu.Lock()
	delete(h.peerTable.built, cmd.Peer.ID)
	delete(h.peerTable.tokens, cmd.Peer.ID)
	h.peerTable.mu.Unlock()
	c.JSON(status, api.PeerResponse{Peer: cmd.Peer, LogIndex: res.LogIndex})
}

// checkEpoch is the epoch of a check's first token, or 0.
func checkEpoch(req *api.CheckRequest) uint32 {
	if len(req.Tokens) == 0 {
		return 0
	}
	t, err := protocol.ParseToken(req.Tokens[0])
	if err != nil {
		return 0
	}
	return t.Epoch
}
