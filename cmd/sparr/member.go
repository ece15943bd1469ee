package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/keyring"
)

func memberCommands() []*command {
	return []*command{
		{name: "add", summary: "register a member", run: runMemberAdd},
		{name: "list", summary: "list the members", run: runMemberList},
		{name: "show", summary: "show one member", run: runMemberShow},
		{name: "update", summary: "change a member's name, roles, keys or quotas", run: runMemberUpdate},
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

// client checks the flags and connects to the hub as the operator.
func (h *hubFlags) client(ctx context.Context, name string) (*client.Client, error) {
	if err := h.check(name); err != nil {
		return nil, err
	}
	path := h.operatorKey
	if path == "" {
		path = keyring.OperatorKeyPath(keysDir(h.data))
	}
	key, err := keyring.LoadOperator(path)
	if err != nil {
		return nil, fmt.Errorf("load the operator key: %w; give --operator-key FILE, or --data DIR of the hub whose keys/operator.jwk it is", err)
	}
	// The operator's commands say at once what the hub answered; they
	// are not sent again.
	return connect(ctx, h.hub, server.OperatorID, key, client.Retry{Attempts: 1})
}

// connect returns the SDK's client for member at the hub, having read the
// hub's discovery document, whose issuer is the audience of the member's
// bearer tokens.
func connect(ctx context.Context, hub, member string, key *protocol.SigningKey, retry client.Retry) (*client.Client, error) {
	base := strings.TrimSuffix(hub, "/")
	c, err := client.New(client.Config{HubURL: base, MemberID: member, Key: key, Retry: retry})
	if err != nil {
		return nil, err
	}
	if _, err := c.Configuration(ctx); err != nil {
		var p *client.Problem
		var ue *url.Error
		isProblem := errors.As(err, &p)
		switch {
		case isProblem && p.Type == "" && p.Title == "":
			// Something answered, but not a hub: say so, not its page.
			return nil, fmt.Errorf("%s%s answered %d %s, not a Spärr hub's discovery document; check --hub",
				base, api.ConfigurationPath, p.StatusCode(), http.StatusText(p.StatusCode()))
		case isProblem || errors.As(err, &ue):
			return nil, hubError(base, err)
		}
		return nil, fmt.Errorf("%s%s is not a Spärr hub's discovery document; check --hub", base, api.ConfigurationPath)
	}
	return c, nil
}

// hubError says what went wrong with a request to the hub at base: the
// problem it answered with, by its title, detail, fields and request id
// (or, for an answer that is not a problem document, the status and the
// start of the body), or that it could not be reached. Other errors are
// returned as they are.
func hubError(base string, err error) error {
	base = strings.TrimSuffix(base, "/")
	var p *client.Problem
	if errors.As(err, &p) {
		if p.Title == "" {
			return fmt.Errorf("%s: the hub answered %d %s: %s", p.Op, p.StatusCode(), http.StatusText(p.StatusCode()), p.Detail)
		}
		msg := p.Title
		if p.Detail != "" {
			msg += ": " + p.Detail
		}
		for _, f := range p.Errors {
			if !strings.Contains(p.Detail, f.Detail) { // the detail often says it already
				msg += fmt.Sprintf("; %s: %s", cmp.Or(f.Pointer, f.Parameter), f.Detail)
			}
		}
		if p.RequestID != "" {
			msg += " (request id " + p.RequestID + ")"
		}
		if p.Attempts > 1 {
			msg += fmt.Sprintf(" (after %d attempts)", p.Attempts)
		}
		return errors.New(msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("cannot reach the hub at %s: %v; check --hub", base, ue.Err)
	}
	return err
}

// printJSON prints one of the hub's answers as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// memberFields are the flags that describe a member.
type memberFields struct {
	id, name, roles, jwks, jwksURL string
	quotas                         api.Quotas
}

// quotaFlags are the flags of a member's own quotas.
var quotaFlags = []string{"tokens-per-second", "tokens-per-day", "stored-bytes-per-day"}

func (m *memberFields) register(fs *flagSet, withID bool) {
	if withID {
		fs.StringVar(&m.id, "id", "", "the member's `ID`: lower-case letters, digits and '-', starting with a letter (required)")
	}
	fs.StringVar(&m.name, "name", "", "the institution's `NAME`, such as \"Bank A AB\"")
	fs.StringVar(&m.roles, "roles", "", "comma-separated `ROLES`: flag, suspicion, check, regulator, operator, peer")
	fs.StringVar(&m.jwks, "jwks", "", "`FILE` with the member's public signing keys, a JWK Set (or one public JWK)")
	fs.StringVar(&m.jwksURL, "jwks-url", "", "`URL` the hub fetches the member's JWK Set from (https)")
	fs.Float64Var(&m.quotas.TokensPerSecond, "tokens-per-second", 0, "the member's own quota: `N` identifiers it may have tokenized a second, sustained")
	fs.Int64Var(&m.quotas.TokensPerDay, "tokens-per-day", 0, "the member's own quota: `N` identifiers it may have tokenized a day, UTC")
	fs.Int64Var(&m.quotas.StoredBytesPerDay, "stored-bytes-per-day", 0, "the member's own allowance: `BYTES` its requests may have the hub store a day, UTC")
	for _, f := range quotaFlags {
		fs.note(f, "the hub's, sparr serve --"+f)
	}
	// A quota left in the environment would be every member's added or
	// updated, unseen: quotas are given on the command line only.
	fs.commandLineOnly(quotaFlags...)
}

// parseQuotas returns the quotas given on the command line, or nil if
// none was. A quota is a number from 0 (the hub's default) to the upper
// bound the hub holds it to (api.Quotas.Validate).
func (m *memberFields) parseQuotas(fs *flagSet, name string) (*api.Quotas, error) {
	given := false
	for _, f := range quotaFlags {
		given = given || fs.given(f)
	}
	if !given {
		return nil, nil
	}
	q := m.quotas
	switch {
	case !(q.TokensPerSecond >= 0) || q.TokensPerSecond > api.MaxTokensPerSecond:
		return nil, usagef("%s: --tokens-per-second %v: want a number from 0 (the hub's default) to %d, such as 20", name, q.TokensPerSecond, api.MaxTokensPerSecond)
	case q.TokensPerDay < 0 || q.TokensPerDay > api.MaxTokensPerDay:
		return nil, usagef("%s: --tokens-per-day %d: want a number from 0 (the hub's default) to %d, such as 200000", name, q.TokensPerDay, api.MaxTokensPerDay)
	case q.StoredBytesPerDay < 0 || q.StoredBytesPerDay > api.MaxStoredBytesPerDay:
		return nil, usagef("%s: --stored-bytes-per-day %d: want a number from 0 (the hub's default) to %d, such as 1073741824", name, q.StoredBytesPerDay, int64(api.MaxStoredBytesPerDay))
	}
	return &q, nil
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
		return nil, usagef("%s: --roles: give at least one of flag, suspicion, check, regulator, operator, peer", name)
	}
	return roles, nil
}

// readJWKS reads a JWK Set file, or a file with one public JWK, which it
// wraps in a set. An error names the key at fault.
func readJWKS(path string) (json.RawMessage, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the member's keys: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if json.Unmarshal(b, &set) == nil && set.Keys != nil {
		if _, err := protocol.ParseKeySet(b); err != nil {
			for i, raw := range set.Keys {
				if _, kerr := protocol.ParsePublicKey(raw); kerr != nil {
					return nil, keyError(path, fmt.Sprintf("the key at index %d of the set", i), raw, kerr)
				}
			}
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return b, nil
	}
	k, err := protocol.ParsePublicKey(b)
	if err != nil {
		if json.Valid(b) {
			return nil, keyError(path, "the key", b, err)
		}
		return nil, fmt.Errorf("%s: %w; give the member's public keys as a JWK Set (or one public JWK)", path, err)
	}
	ks, err := protocol.NewKeySet(k)
	if err != nil {
		return nil, err
	}
	return ks.MarshalJSON()
}

// keyError says what is wrong with one JWK of a member's keys file (which,
// "the key at index 1 of the set"), and how to give a key without a "kid"
// one: its RFC 7638 thumbprint, when the key is otherwise usable.
func keyError(path, which string, raw json.RawMessage, err error) error {
	var fields map[string]any
	if json.Unmarshal(raw, &fields) != nil {
		return fmt.Errorf("%s: %s: %w", path, which, err)
	}
	if kid, _ := fields["kid"].(string); kid != "" {
		return fmt.Errorf("%s: %s: %w", path, which, err)
	}
	advice := "add one to it: any name unique in the set"
	fields["kid"] = "-"
	if b, merr := json.Marshal(fields); merr == nil {
		if k, perr := protocol.ParsePublicKey(b); perr == nil {
			if tp, terr := protocol.Thumbprint(k.CryptoPublicKey()); terr == nil {
				advice = fmt.Sprintf(`add one to it, such as "kid": %q (the key's RFC 7638 thumbprint)`, tp)
			}
		}
	}
	return fmt.Errorf("%s: %s has no \"kid\"; %s", path, which, advice)
}

func runMemberAdd(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --id ID --name NAME --roles ROLE,… (--jwks FILE | --jwks-url URL) [--tokens-per-second N] [--tokens-per-day N] [--stored-bytes-per-day BYTES] [--json]",
		"Add registers a member with the hub. It prints the member as the hub stored it,\nand the exchange-log index of the change, as text or, with --json, as JSON.\nA quota left out, or 0, is the hub's default (sparr serve's flag of the same\nname); give one only where the defaults do not fit the member.")
	var h hubFlags
	var m memberFields
	h.register(fs)
	m.register(fs, true)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer instead of text")
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
	quotas, err := m.parseQuotas(fs, name)
	if err != nil {
		return err
	}
	if quotas != nil && *quotas == (api.Quotas{}) {
		quotas = nil // every quota the hub's default
	}
	if err := h.check(name); err != nil {
		return err
	}
	req := api.MemberRequest{ID: m.id, Name: m.name, Roles: roles, JWKSURL: m.jwksURL, Quotas: quotas}
	if m.jwks != "" {
		if req.JWKS, err = readJWKS(m.jwks); err != nil {
			return err
		}
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	added, err := c.AddMember(ctx, req)
	var p *client.Problem
	if errors.Is(err, client.ErrStateConflict) && errors.As(err, &p) {
		// The hub's detail names its API; the operator changes a member
		// with member update.
		msg := fmt.Sprintf("member %q already exists; change it with sparr member update %s and what changes (--name, --roles, --jwks or --jwks-url, quotas), or choose another --id", m.id, m.id)
		if p.RequestID != "" {
			msg += " (request id " + p.RequestID + ")"
		}
		return errors.New(msg)
	}
	if err != nil {
		return hubError(h.hub, err)
	}
	return printMember(e.stdout, added, *asJSON)
}

func runMemberUpdate(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "ID --hub URL [--name NAME] [--roles ROLE,…] [--jwks FILE | --jwks-url URL] [--tokens-per-second N] [--tokens-per-day N] [--stored-bytes-per-day BYTES] [--default-quotas] [--json]",
		"Update changes what is given of a member's name, roles, keys and quotas, and\nprints the member as add does. New\nkeys replace the old ones; --jwks replaces a --jwks-url and the other way round.\nThe quotas given replace the member's own quotas whole: a quota left out goes\nback to the hub's default, and --default-quotas sends them all back.")
	var h hubFlags
	var m memberFields
	h.register(fs)
	m.register(fs, false)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer instead of text")
	defaults := fs.Bool("default-quotas", false, "give the member the hub's default quotas again")
	// What update changes is given on the command line only: a variable
	// left in the environment would change every member updated.
	fs.commandLineOnly("default-quotas", "name", "roles", "jwks", "jwks-url")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	id, err := oneID(name, args)
	if err != nil {
		return err
	}
	quotas, err := m.parseQuotas(fs, name)
	if err != nil {
		return err
	}
	switch {
	case m.jwks != "" && m.jwksURL != "":
		return usagef("%s: give --jwks FILE or --jwks-url URL, not both", name)
	case *defaults && quotas != nil:
		return usagef("%s: give the member's quotas or --default-quotas, not both", name)
	case !fs.given("name") && !fs.given("roles") && m.jwks == "" && m.jwksURL == "" && quotas == nil && !*defaults:
		return usagef("%s: nothing to change; give --name, --roles, --jwks, --jwks-url, a quota or --default-quotas", name)
	}
	var patch api.MemberPatch
	patch.Quotas = quotas
	if *defaults {
		patch.Quotas = &api.Quotas{}
	}
	if fs.given("name") {
		patch.Name = &m.name
	}
	if fs.given("roles") {
		roles, err := m.parseRoles(name)
		if err != nil {
			return err
		}
		patch.Roles = &roles
	}
	if err := h.check(name); err != nil {
		return err
	}
	if m.jwks != "" {
		if patch.JWKS, err = readJWKS(m.jwks); err != nil {
			return err
		}
	}
	if m.jwksURL != "" {
		patch.JWKSURL = &m.jwksURL
	}
	c, err := h.client(ctx, name)
	if err != nil {
		return err
	}
	updated, err := c.UpdateMember(ctx, id, patch)
	if err != nil {
		return hubError(h.hub, err)
	}
	return printMember(e.stdout, updated, *asJSON)
}

func runMemberShow(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "ID --hub URL [--json]", "Show prints one member as the hub holds it, as text, or as JSON with --json.")
	var h hubFlags
	h.register(fs)
	asJSON := fs.Bool("json", false, "print the hub's JSON answer instead of text")
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
	m, err := c.Member(ctx, id)
	if err != nil {
		return hubError(h.hub, err)
	}
	return printMember(e.stdout, &api.MemberResponse{Member: m}, *asJSON)
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
	members, err := c.Members(ctx)
	if err != nil {
		return hubError(h.hub, err)
	}
	if *asJSON {
		return printJSON(e.stdout, api.MembersResponse{Members: members})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLES\tSTATUS\tKEYS\tQUOTAS\tUPDATED")
	for _, m := range members {
		roles := make([]string, len(m.Roles))
		for i, r := range m.Roles {
			roles[i] = string(r)
		}
		keys := m.JWKSURL
		if keys == "" {
			keys = fmt.Sprintf("inline, %d key(s)", len(keyIDs(m)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.Name, strings.Join(roles, ","), m.Status, keys, quotaSummary(m.Quotas), m.UpdatedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

// printMember prints a member as the hub answered with it: as text, or as
// JSON.
func printMember(w io.Writer, doc *api.MemberResponse, asJSON bool) error {
	if asJSON {
		return printJSON(w, doc)
	}
	m := doc.Member
	roles := make([]string, len(m.Roles))
	for i, r := range m.Roles {
		roles[i] = string(r)
	}
	keys := m.JWKSURL
	if keys == "" {
		keys = "inline, key ids " + strings.Join(keyIDs(m), ", ")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\t%s\n", m.ID)
	fmt.Fprintf(tw, "NAME\t%s\n", m.Name)
	fmt.Fprintf(tw, "ROLES\t%s\n", strings.Join(roles, ","))
	fmt.Fprintf(tw, "STATUS\t%s\n", m.Status)
	fmt.Fprintf(tw, "KEYS\t%s\n", keys)
	fmt.Fprintf(tw, "QUOTAS\t%s\n", quotaSummary(m.Quotas))
	fmt.Fprintf(tw, "CREATED\t%s\n", m.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "UPDATED\t%s\n", m.UpdatedAt.UTC().Format(time.RFC3339))
	if doc.LogIndex != 0 {
		fmt.Fprintf(tw, "LOG INDEX\t%d\n", doc.LogIndex)
	}
	return tw.Flush()
}

// keyIDs are the key ids of a member's inline key set.
func keyIDs(m *api.Member) []string {
	ks, err := protocol.ParseKeySet(m.JWKS)
	if err != nil {
		return nil
	}
	var kids []string
	for _, k := range ks.Keys() {
		kids = append(kids, k.KeyID())
	}
	return kids
}

// quotaSummary says which of a member's quotas are its own, as
// name=value pairs, or "default" when all are the hub's.
func quotaSummary(q *api.Quotas) string {
	if q == nil {
		return "default"
	}
	var own []string
	if q.TokensPerSecond != 0 {
		own = append(own, "tokens_per_second="+strconv.FormatFloat(q.TokensPerSecond, 'f', -1, 64))
	}
	if q.TokensPerDay != 0 {
		own = append(own, "tokens_per_day="+strconv.FormatInt(q.TokensPerDay, 10))
	}
	if q.StoredBytesPerDay != 0 {
		own = append(own, "stored_bytes_per_day="+strconv.FormatInt(q.StoredBytesPerDay, 10))
	}
	if len(own) == 0 {
		return "default"
	}
	return strings.Join(own, ",")
}

func runMemberSuspend(ctx context.Context, e *env, name string, args []string) error {
	return setMemberStatus(ctx, e, name, args, true,
		"Suspend makes the hub refuse a member's requests and stop delivering to it.\nIts records and history stay; sparr member resume undoes it.")
}

func runMemberResume(ctx context.Context, e *env, name string, args []string) error {
	return setMemberStatus(ctx, e, name, args, false, "Resume lets a suspended member use the hub again.")
}

func setMemberStatus(ctx context.Context, e *env, name string, args []string, suspend bool, about string) error {
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
	change := c.ResumeMember
	if suspend {
		change = c.SuspendMember
	}
	doc, err := change(ctx, id)
	if err != nil {
		return hubError(h.hub, err)
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
