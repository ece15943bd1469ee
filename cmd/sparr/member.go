package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/keyring"
)

const membersPath = "/v1/admin/members"

func memberCommands() []*command {
	return []*command{
		{name: "add", summary: "register a member", run: runMemberAdd},
		{name: "list", summary: "list the members", run: runMemberList},
		{name: "show", summary: "show one member", run: runMemberShow},
		{name: "update", summary: "change a member's name, roles or keys", run: runMemberUpdate},
		{name: "suspend", summary: "refuse a member's requests and stop delivering to it", run: runMemberSuspend},
		{name: "resume", summary: "undo a suspension", run: runMemberResume},
	}
}

// hubFlags locate the running hub and the operator's key.
type hubFlags struct {
	hub, operatorKey, data string
}

func (h *hubFlags) register(fs *flagSet) {
	fs.StringVar(&h.hub, "hub", "", "the hub's `URL`, such as https://hub.example (required)")
	fs.StringVar(&h.operatorKey, "operator-key", "", "the operator's private key, a JWK `FILE`")
	fs.note("operator-key", "DIR/keys/operator.jwk with --data DIR")
	fs.StringVar(&h.data, "data", "", "the hub's data `DIR`, to find the operator key in")
}

// check refuses missing or malformed flags.
func (h *hubFlags) check(name string) error {
	if h.hub == "" {
		return usagef("%s: missing --hub URL, the hub's address (or set SPARR_HUB)", name)
	}
	u, err := url.Parse(h.hub)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return usagef("%s: --hub %q: want the hub's URL, such as https://hub.example", name, h.hub)
	}
	if h.operatorKey == "" && h.data == "" {
		return usagef("%s: missing --operator-key FILE, the operator's private key (or --data DIR for DIR/keys/operator.jwk)", name)
	}
	return nil
}

// client checks the flags and connects to the hub.
func (h *hubFlags) client(ctx context.Context, name string) (*adminClient, error) {
	if err := h.check(name); err != nil {
		return nil, err
	}
	path := h.operatorKey
	if path == "" {
		path = keyring.OperatorKeyPath(keysDir(h.data))
	}
	key, err := keyring.LoadOperator(path)
	if err != nil {
		return nil, fmt.Errorf("load the operator key: %w", err)
	}
	return newAdminClient(ctx, strings.TrimSuffix(h.hub, "/"), key)
}

// An adminClient calls the hub's admin API as the operator.
type adminClient struct {
	base   string
	issuer string
	member string
	key    *protocol.SigningKey
	http   *http.Client
}

// newAdminClient reads the hub's issuer, the audience of the operator's
// bearer tokens, from its discovery document.
func newAdminClient(ctx context.Context, base string, key *protocol.SigningKey) (*adminClient, error) {
	return newMemberClient(ctx, base, server.OperatorID, key)
}

// newMemberClient is newAdminClient for any member: a regulator reading
// the exchange log, say.
func newMemberClient(ctx context.Context, base, member string, key *protocol.SigningKey) (*adminClient, error) {
	c := &adminClient{base: base, member: member, key: key, http: &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: time.Minute,
	}}}
	resp, err := c.send(ctx, http.MethodGet, "/.well-known/sparr-configuration", nil, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cfg struct {
		Issuer string `json:"issuer"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&cfg); err != nil || cfg.Issuer == "" {
		return nil, fmt.Errorf("%s/.well-known/sparr-configuration is not a Spärr hub's discovery document; check --hub", base)
	}
	c.issuer = cfg.Issuer
	return c, nil
}

// send makes a request, with the operator's bearer token if auth, and
// turns an error answer into an error. The caller closes the body.
func (c *adminClient) send(ctx context.Context, method, path string, body any, auth bool) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		cancel()
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, "+protocol.ProblemContentType)
	if auth {
		tok, err := protocol.NewBearer(c.key, c.member, c.issuer, time.Now(), 2*time.Minute)
		if err != nil {
			cancel()
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("cannot reach the hub at %s: %v; check --hub", c.base, err)
	}
	resp.Body = &cancelOnClose{resp.Body, cancel}
	if resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, answerError(method, path, resp)
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// answerError describes an error answer: a problem document's title,
// detail and request id, or the status and the start of the body.
func answerError(method, path string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p protocol.Problem
	if strings.HasPrefix(resp.Header.Get("Content-Type"), protocol.ProblemContentType) && json.Unmarshal(b, &p) == nil && p.Title != "" {
		msg := p.Title
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		for _, f := range p.Errors {
			msg += fmt.Sprintf("; %s: %s", f.Pointer, f.Detail)
		}
		if p.RequestID != "" {
			msg += " (request id " + p.RequestID + ")"
		}
		return errors.New(msg)
	}
	text := oneLine(string(b))
	if len(text) > 200 {
		text = text[:200] + "…"
	}
	return fmt.Errorf("%s %s: the hub answered %s: %s", method, path, resp.Status, text)
}

// call sends an authenticated request and reads the whole answer.
func (c *adminClient) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	resp, err := c.send(ctx, method, path, body, true)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	return b, nil
}

// printJSON prints a JSON answer indented.
func printJSON(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("the hub's answer is not JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// memberFields are the flags that describe a member.
type memberFields struct {
	id, name, roles, jwks, jwksURL string
}

func (m *memberFields) register(fs *flagSet, withID bool) {
	if withID {
		fs.StringVar(&m.id, "id", "", "the member's `ID`: lower-case letters, digits and '-', starting with a letter (required)")
	}
	fs.StringVar(&m.name, "name", "", "the institution's `NAME`, such as \"Bank A AB\"")
	fs.StringVar(&m.roles, "roles", "", "comma-separated `ROLES`: flag, suspicion, check, regulator, operator")
	fs.StringVar(&m.jwks, "jwks", "", "`FILE` with the member's public signing keys, a JWK Set (or one public JWK)")
	fs.StringVar(&m.jwksURL, "jwks-url", "", "`URL` the hub fetches the member's JWK Set from (https)")
}

func (m *memberFields) parseRoles(name string) ([]api.Role, error) {
	var roles []api.Role
	for s := range strings.SplitSeq(m.roles, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		r, err := api.ParseRole(s)
		if err != nil {
			return nil, usagef("%s: --roles: %v", name, err)
		}
		roles = append(roles, r)
	}
	if len(roles) == 0 {
		return nil, usagef("%s: --roles: give at least one of flag, suspicion, check, regulator, operator", name)
	}
	return roles, nil
}

// readJWKS reads a JWK Set file, or a file with one public JWK, which it
// wraps in a set.
func readJWKS(path string) (json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the member's keys: %w", err)
	}
	_, setErr := protocol.ParseKeySet(b)
	if setErr == nil {
		return b, nil
	}
	k, err := protocol.ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; give the member's public keys as a JWK Set", path, setErr)
	}
	ks, err := protocol.NewKeySet(k)
	if err != nil {
		return nil, err
	}
	return ks.MarshalJSON()
}

func runMemberAdd(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --id ID --name NAME --roles ROLE,… (--jwks FILE | --jwks-url URL)",
		"Add registers a member with the hub. It prints the member as the hub stored it.")
	var h hubFlags
	var m memberFields
	h.register(fs)
	m.register(fs, true)
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	switch {
	case m.id == "":
		return usagef("%s: missing --id ID", name)
	case m.name == "":
		return usagef("%s: missing --name NAME", name)
	case (m.jwks == "") == (m.jwksURL == ""):
		return usagef("%s: give the member's public keys with --jwks FILE or --jwks-url URL (one of them)", name)
	}
	roles, err := m.parseRoles(name)
	if err != nil {
		return err
	}
	if err := h.check(name); err != nil {
		return err
	}
	body := map[string]any{"id": m.id, "name": m.name, "roles": roles}
	if m.jwks != "" {
		if body["jwks"], err = readJWKS(m.jwks); err != nil {
			return err
		}
	} else {
		body["jwks_url"] = m.jwksURL
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	b, err := c.call(ctx, http.MethodPost, membersPath, body)
	if err != nil {
		return err
	}
	return printJSON(e.stdout, b)
}

func runMemberUpdate(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "ID --hub URL [--name NAME] [--roles ROLE,…] [--jwks FILE | --jwks-url URL]",
		"Update changes what is given of a member's name, roles and keys. New keys\nreplace the old ones; --jwks replaces a --jwks-url and the other way round.")
	var h hubFlags
	var m memberFields
	h.register(fs)
	m.register(fs, false)
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(name, args)
	if err != nil {
		return err
	}
	switch {
	case m.jwks != "" && m.jwksURL != "":
		return usagef("%s: give --jwks FILE or --jwks-url URL, not both", name)
	case !fs.given("name") && !fs.given("roles") && m.jwks == "" && m.jwksURL == "":
		return usagef("%s: nothing to change; give --name, --roles, --jwks or --jwks-url", name)
	}
	patch := map[string]any{}
	if fs.given("name") {
		patch["name"] = m.name
	}
	if fs.given("roles") {
		if patch["roles"], err = m.parseRoles(name); err != nil {
			return err
		}
	}
	if err := h.check(name); err != nil {
		return err
	}
	if m.jwks != "" {
		if patch["jwks"], err = readJWKS(m.jwks); err != nil {
			return err
		}
	}
	if m.jwksURL != "" {
		patch["jwks_url"] = m.jwksURL
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	b, err := c.call(ctx, http.MethodPatch, membersPath+"/"+url.PathEscape(id), patch)
	if err != nil {
		return err
	}
	return printJSON(e.stdout, b)
}

func runMemberShow(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "ID --hub URL", "Show prints one member as the hub holds it.")
	var h hubFlags
	h.register(fs)
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(name, args)
	if err != nil {
		return err
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	b, err := c.call(ctx, http.MethodGet, membersPath+"/"+url.PathEscape(id), nil)
	if err != nil {
		return err
	}
	return printJSON(e.stdout, b)
}

func runMemberList(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL [--json]", "List prints every member as a table, or as JSON with --json.")
	var h hubFlags
	h.register(fs)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer instead of a table")
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
	b, err := c.call(ctx, http.MethodGet, membersPath, nil)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, b)
	}
	var doc struct {
		Members []api.Member `json:"members"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("the hub's member list: %w", err)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLES\tSTATUS\tKEYS\tUPDATED")
	for _, m := range doc.Members {
		roles := make([]string, len(m.Roles))
		for i, r := range m.Roles {
			roles[i] = string(r)
		}
		keys := m.JWKSURL
		if keys == "" {
			n := 0
			if ks, err := protocol.ParseKeySet(m.JWKS); err == nil {
				n = ks.Len()
			}
			keys = fmt.Sprintf("inline, %d key(s)", n)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Name, strings.Join(roles, ","), m.Status, keys, m.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func runMemberSuspend(ctx context.Context, e *env, name string, args []string) error {
	return setMemberStatus(ctx, e, name, args, "suspend",
		"Suspend makes the hub refuse a member's requests and stop delivering to it.\nIts records and history stay; sparr member resume undoes it.")
}

func runMemberResume(ctx context.Context, e *env, name string, args []string) error {
	return setMemberStatus(ctx, e, name, args, "resume", "Resume lets a suspended member use the hub again.")
}

func setMemberStatus(ctx context.Context, e *env, name string, args []string, action, about string) error {
	fs := e.flags(name, "ID --hub URL", about)
	var h hubFlags
	h.register(fs)
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(name, args)
	if err != nil {
		return err
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	b, err := c.call(ctx, http.MethodPost, membersPath+"/"+url.PathEscape(id)+"/"+action, nil)
	if err != nil {
		return err
	}
	var doc struct {
		Member api.Member `json:"member"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("the hub's answer: %w", err)
	}
	switch doc.Member.Status {
	case api.MemberSuspended:
		fmt.Fprintf(e.stdout, "%s is suspended: the hub refuses its requests and does not deliver to it. Undo with sparr member resume %s.\n", doc.Member.ID, doc.Member.ID)
	default:
		fmt.Fprintf(e.stdout, "%s is %s.\n", doc.Member.ID, doc.Member.Status)
	}
	return nil
}

// oneID takes the member id, the one positional argument.
func oneID(name string, args []string) (string, error) {
	switch len(args) {
	case 0:
		return "", usagef("%s: missing the member ID, as in %s bank-a", name, program(name))
	case 1:
		return args[0], nil
	}
	return "", usagef("%s: one member ID at a time; got %q", name, strings.Join(args, " "))
}
