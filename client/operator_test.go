package client_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestMembers: the operator registers, reads, changes, suspends and
// resumes a member, which then works as a member; the hub's refusals come
// back as problems; another member may not do any of it.
func TestMembers(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	op := newClient(t, hub, hub.Operator)
	key, jwks := hubtest.NewKey(t)

	added, err := op.AddMember(ctx, api.MemberRequest{ID: "bank-x", Name: "Bank X", Roles: []api.Role{api.RoleFlag, api.RoleCheck}, JWKS: jwks})
	if err != nil {
		t.Fatal(err)
	}
	if m := added.Member; m.ID != "bank-x" || m.Status != api.MemberActive || !m.HasRole(api.RoleCheck) || added.LogIndex == 0 {
		t.Errorf("added %+v (log index %d), want bank-x, active, with the check role and a log index", m, added.LogIndex)
	}
	if _, err := op.AddMember(ctx, api.MemberRequest{ID: "bank-x", Name: "Again", Roles: []api.Role{api.RoleCheck}, JWKS: jwks}); !errors.Is(err, client.ErrStateConflict) {
		t.Errorf("adding bank-x again: got %v, want ErrStateConflict", err)
	}
	var p *client.Problem
	if _, err := op.AddMember(ctx, api.MemberRequest{ID: "bank-y", Name: "Bank Y", Roles: []api.Role{api.RoleCheck}, JWKSURL: "ftp://keys.example/jwks"}); !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity && p.Status != http.StatusBadRequest {
		t.Errorf("adding a member with an ftp key URL: got %v, want a 400 or 422 problem", err)
	}

	name := "Bank X (publ)"
	upd, err := op.UpdateMember(ctx, "bank-x", api.MemberPatch{Name: &name})
	if err != nil || upd.Member.Name != name {
		t.Fatalf("update: got %+v, %v; want the new name", upd, err)
	}
	if m, err := op.Member(ctx, "bank-x"); err != nil || m.Name != name || !m.UpdatedAt.After(added.Member.UpdatedAt) && !m.UpdatedAt.Equal(added.Member.UpdatedAt) {
		t.Errorf("member after the update: got %+v, %v", m, err)
	}
	if _, err := op.Member(ctx, "bank-z"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("member bank-z: got %v, want ErrNotFound", err)
	}
	all, err := op.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range all {
		ids = append(ids, m.ID)
	}
	if strings.Join(ids, " ") != "bank-x operator" {
		t.Errorf("members: got %q, want bank-x and operator, by id", ids)
	}

	bank := newClient(t, hub, &hubtest.Member{ID: "bank-x", Key: key})
	if _, err := bank.Tokenize(ctx, protocol.TypeEmail, "x@example.se"); err != nil {
		t.Fatalf("the new member tokenizes: %v", err)
	}
	if _, err := bank.Members(ctx); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("members, asked by a bank: got %v, want ErrForbidden", err)
	}

	sus, err := op.SuspendMember(ctx, "bank-x")
	if err != nil || sus.Member.Status != api.MemberSuspended || sus.LogIndex == 0 {
		t.Fatalf("suspend: got %+v, %v; want suspended, logged", sus, err)
	}
	if again, err := op.SuspendMember(ctx, "bank-x"); err != nil || again.Member.Status != api.MemberSuspended || again.LogIndex != 0 {
		t.Errorf("suspend again: got %+v, %v; want suspended, nothing logged", again, err)
	}
	if _, err := bank.Tokenize(ctx, protocol.TypeEmail, "x2@example.se"); !errors.Is(err, client.ErrSuspended) {
		t.Errorf("the suspended member tokenizes: got %v, want ErrSuspended", err)
	}
	if res, err := op.ResumeMember(ctx, "bank-x"); err != nil || res.Member.Status != api.MemberActive {
		t.Fatalf("resume: got %+v, %v; want active", res, err)
	}
	if _, err := bank.Tokenize(ctx, protocol.TypeEmail, "x3@example.se"); err != nil {
		t.Errorf("the resumed member tokenizes: %v", err)
	}
	if _, err := op.SuspendMember(ctx, "operator"); !errors.Is(err, client.ErrStateConflict) && !errors.Is(err, client.ErrValidation) && !errors.Is(err, client.ErrForbidden) {
		t.Errorf("suspending the operator: got %v, want a refusal", err)
	}
}

// TestEndpoints: the operator sees every member's endpoint.
func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast})
	op := newClient(t, hub, hub.Operator)
	for _, id := range []string{"bank-a", "bank-b"} {
		c := newClient(t, hub, hub.AddMember(t, id, api.RoleCheck))
		url, _ := startReceiver(t, c, newEvents().handle)
		if _, _, err := c.RegisterEndpoint(ctx, url); err != nil {
			t.Fatal(err)
		}
	}
	eps, err := op.Endpoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || eps[0].Member != "bank-a" || eps[1].Member != "bank-b" {
		t.Fatalf("endpoints: got %d, want bank-a's and bank-b's", len(eps))
	}
}

// TestEraseSubject: an erasure's answer carries the subject-erased record,
// verified; a record that is not the erasure's is refused with the
// evidence, though the erasure has happened.
func TestEraseSubject(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	bank := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck))
	op := newClient(t, hub, hub.Operator)
	toks, err := bank.Tokenize(ctx, protocol.TypeEmail, "erase@example.se", "spoil@example.se")
	if err != nil {
		t.Fatal(err)
	}
	placed := place(t, bank, hub.Now(), toks[0])
	res, err := op.EraseSubject(ctx, toks[0], "gdpr-art-17")
	if err != nil {
		t.Fatal(err)
	}
	if res.Record == nil || res.Record.Event.EventType() != protocol.EventSubjectErased || res.RecordsErased == 0 || res.LogIndex == 0 || res.Seq == 0 {
		t.Errorf("erasure: got %+v, want a verified subject-erased record, records erased, a log index and a sequence number", res)
	}
	if f, err := bank.Flag(ctx, placed.Flag.ID); err != nil || f.Status != api.FlagErased {
		t.Errorf("the erased subject's flag: got %+v, %v; want erased", f, err)
	}

	// A proxy that answers with another record: the flag-placed one.
	px := startProxy(t, hub)
	other := place(t, bank, hub.Now(), toks[1])
	px.edit = func(op string, body []byte) []byte {
		var a map[string]any
		json.Unmarshal(body, &a)
		a["record"] = other.RecordJWS
		b, _ := json.Marshal(a)
		return b
	}
	spoilt := newClient(t, hub, hub.Operator, func(cfg *client.Config) { cfg.HubURL = px.URL })
	res, err = spoilt.EraseSubject(ctx, toks[1], "gdpr-art-17")
	var re *client.RecordError
	if !errors.As(err, &re) || !errors.Is(err, client.ErrWrongType) || re.JWS != other.RecordJWS || res == nil || res.Record != nil || res.LogIndex == 0 {
		t.Errorf("an erasure answered with another record: got %+v, %v; want a RecordError (ErrWrongType) with the record, and the answer without Record", res, err)
	}
}

// TestBackup: a hot backup streams the data file, and is logged.
func TestBackup(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	op := newClient(t, hub, hub.Operator)
	var buf bytes.Buffer
	n, err := op.Backup(ctx, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || n != int64(buf.Len()) || n%4096 != 0 {
		t.Errorf("backup: %d bytes, %d written; want whole pages of a bbolt file", n, buf.Len())
	}
	entries := hub.LogEntries(t)
	if last := entries[len(entries)-1]; last.Action != protocol.LogBackup || last.Member != "operator" {
		t.Errorf("the last log entry is %s by %s, want the operator's backup", last.Action, last.Member)
	}
	bank := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleCheck))
	if _, err := bank.Backup(ctx, &buf); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a bank's backup: got %v, want ErrForbidden", err)
	}
}

// TestAudit: a regulator pages through the entries a filter selects,
// counts them, and exports them.
func TestAudit(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	bank := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck))
	reg := newClient(t, hub, hub.AddMember(t, "fi", api.RoleRegulator))
	toks, err := bank.Tokenize(ctx, protocol.TypeEmail, "a1@example.se", "a2@example.se", "a3@example.se")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if _, err := bank.Check(ctx, api.PurposeOther, tok); err != nil {
			t.Fatal(err)
		}
	}
	f := client.AuditFilter{Member: "bank-a", Action: protocol.LogCheck}
	var got []api.AuditEntry
	var after *uint64
	for pages := 0; ; pages++ {
		if pages > 3 {
			t.Fatal("more pages than entries")
		}
		page, err := reg.AuditEntries(ctx, f, after, 1)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Entries...)
		if page.Next == nil {
			break
		}
		after = page.Next
	}
	if len(got) != 3 {
		t.Fatalf("got %d check entries of bank-a, want 3", len(got))
	}
	for i, e := range got {
		if e.Member != "bank-a" || e.Action != protocol.LogCheck || i > 0 && e.Index <= got[i-1].Index {
			t.Errorf("entry %d: %+v, want bank-a's checks in index order", i, e)
		}
	}
	if page, err := reg.AuditEntries(ctx, client.AuditFilter{From: got[1].Time.Add(1), Member: "bank-a", Action: protocol.LogCheck}, nil, 0); err != nil || len(page.Entries) > 1 {
		t.Errorf("entries after the second check's time: got %+v, %v; want at most the third", page, err)
	}
	st, err := reg.AuditStats(ctx, client.AuditFilter{Member: "bank-a"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Actions[string(protocol.LogCheck)] != 3 || st.Members["bank-a"] != st.Total {
		t.Errorf("stats of bank-a: got %+v, want 3 checks, all bank-a's", st)
	}
	var jsonl, csv bytes.Buffer
	if _, err := reg.AuditExport(ctx, client.AuditFilter{Member: "bank-a"}, client.AuditJSONL, &jsonl); err != nil {
		t.Fatal(err)
	}
	lines := 0
	for sc := bufio.NewScanner(&jsonl); sc.Scan(); lines++ {
		var e api.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Member != "bank-a" {
			t.Errorf("export line %d: %+v, %v", lines, e, err)
		}
	}
	if uint64(lines) != st.Total {
		t.Errorf("export: %d lines, want the %d entries counted", lines, st.Total)
	}
	if _, err := reg.AuditExport(ctx, f, client.AuditCSV, &csv); err != nil || !strings.HasPrefix(csv.String(), "index,time,member,action") || strings.Count(csv.String(), "\n") != 4 {
		t.Errorf("CSV export: %v\n%s", err, csv.String())
	}
	if _, err := reg.AuditExport(ctx, f, "xml", &csv); err == nil {
		t.Error("export as xml: got no error")
	}
	if _, err := bank.AuditStats(ctx, f); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a bank's audit: got %v, want ErrForbidden", err)
	}
}

// TestLogReads: a regulator reads checkpoints, entries and proofs, and
// they hang together; a protocol.LogAuditor verifies the log through
// Client.Log.
func TestLogReads(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	bank := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck))
	reg := newClient(t, hub, hub.AddMember(t, "fi", api.RoleRegulator))
	key, err := protocol.NewLogVerifier(hub.Configuration().Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	old, err := reg.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bank.Tokenize(ctx, protocol.TypeEmail, "log@example.se"); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	note, err := reg.Log().Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := protocol.OpenCheckpoint(note, key)
	if err != nil || cp.Size <= old.Size {
		t.Fatalf("latest checkpoint: %v, %v; want one larger than %d", cp, err, old.Size)
	}
	if at, err := reg.Log().CheckpointAt(ctx, old.Size); err != nil || !bytes.Equal(at, old.Note) {
		t.Errorf("checkpoint at %d: got %q, %v; want %q", old.Size, at, err, old.Note)
	}
	if _, err := reg.Log().CheckpointAt(ctx, cp.Size+100); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("checkpoint at a size never published: got %v, want ErrNotFound", err)
	}
	lines, err := reg.Log().Entries(ctx, 0, cp.Size)
	if err != nil || uint64(len(lines)) != cp.Size {
		t.Fatalf("entries: got %d, %v; want %d", len(lines), err, cp.Size)
	}
	var f protocol.Frontier
	for _, l := range lines {
		f.Append(l)
	}
	if f.Root() != cp.Root {
		t.Error("the entries do not hash to the checkpoint's root")
	}
	proof, err := reg.Log().ConsistencyProof(ctx, old.Size, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(proof, int64(cp.Size), cp.Root, int64(old.Size), old.Root); err != nil {
		t.Errorf("consistency proof: %v", err)
	}
	incl, err := reg.Log().InclusionProof(ctx, cp.Size-1, cp.Size)
	if err != nil || incl.Entry != string(lines[cp.Size-1]) || incl.Index == nil || *incl.Index != cp.Size-1 {
		t.Fatalf("inclusion proof of the last entry: got %+v, %v", incl, err)
	}
	hashes, err := protocol.ParseProofHashes(incl.Proof)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(hashes, int64(cp.Size), cp.Root, int64(cp.Size-1), tlog.RecordHash(lines[cp.Size-1])); err != nil {
		t.Errorf("inclusion proof: %v", err)
	}
	state, report, err := (&protocol.LogAuditor{Fetcher: reg.Log(), Key: key}).Verify(ctx, nil)
	if err != nil || report.New.Size < cp.Size || state == nil {
		t.Errorf("an auditor over Client.Log: got %+v, %v", report, err)
	}
	if _, err := bank.Log().Entries(ctx, 0, 1); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("a bank reading entries: got %v, want ErrForbidden", err)
	}
}

// TestRaw: a raw request goes out as given, once, and comes back as
// received, problem and all.
func TestRaw(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	px := startProxy(t, hub)
	counted := newCounter()
	c := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleCheck), func(cfg *client.Config) {
		cfg.HubURL = px.URL
		cfg.HTTPClient = &http.Client{Transport: counted}
	})

	resp, err := c.Raw(ctx, client.RawRequest{Method: http.MethodPost, Path: "/v1/check", ContentType: "application/json", Body: []byte(`{"purpose":`)})
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Problem()
	if resp.Status != http.StatusBadRequest || p == nil || !errors.Is(p, client.ErrBadRequest) || p.Status != http.StatusBadRequest || p.RequestID == "" || p.RequestID != resp.Header.Get("X-Request-Id") {
		t.Errorf("a malformed check: got %d, problem %+v; want 400, a malformed-request problem with the request id", resp.Status, p)
	}
	tok, err := c.BearerToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if auths := counted.bearers(); len(auths) != 1 || auths[0] != tok {
		t.Errorf("bearer tokens sent: got %q, want the one BearerToken returns", auths)
	}

	resp, err = c.Raw(ctx, client.RawRequest{Method: http.MethodPost, Path: "/v1/check", ContentType: "application/json", Body: []byte(`{}`), Anonymous: true})
	if err != nil || !errors.Is(resp.Problem(), client.ErrUnauthenticated) {
		t.Errorf("an anonymous check: got %+v, %v; want unauthenticated", resp, err)
	}
	if resp, err := c.Raw(ctx, client.RawRequest{Method: http.MethodGet, Path: api.ConfigurationPath, Anonymous: true}); err != nil || resp.Status != http.StatusOK || resp.Problem() != nil {
		t.Errorf("the configuration: got %+v, %v; want 200 and no problem", resp, err)
	}

	// Never sent again: not after a 503, not after a lost answer.
	for _, f := range []fault{busy, lose} {
		before := px.count("POST /v1/check")
		px.spoilNext("POST /v1/check", f)
		resp, err := c.Raw(ctx, client.RawRequest{Method: http.MethodPost, Path: "/v1/check", ContentType: "application/json", Body: []byte(`{}`)})
		px.set(nil)
		if n := px.count("POST /v1/check") - before; n != 1 {
			t.Errorf("fault %d: sent %d times, want once", f, n)
		}
		if f == busy && (err != nil || resp.Status != http.StatusServiceUnavailable || !errors.Is(resp.Problem(), client.ErrUnavailable)) {
			t.Errorf("a 503: got %+v, %v; want the 503 as answered", resp, err)
		}
		if f == lose && err == nil {
			t.Errorf("a lost answer: got %+v, want an error", resp)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "http://" + ln.Addr().String()
	ln.Close()
	off := newClient(t, hub, hub.Operator, func(cfg *client.Config) { cfg.HubURL = gone })
	var opErr *net.OpError
	if _, err := off.Raw(ctx, client.RawRequest{Method: http.MethodGet, Path: "/healthz", Anonymous: true}); !errors.As(err, &opErr) {
		t.Errorf("a hub that is not there: got %v, want a *net.OpError", err)
	}
}

// TestOperatorRetries: the operator's calls are sent again where a repeat
// is safe, and only then.
func TestOperatorRetries(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	bank := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck))
	px := startProxy(t, hub)
	op := newClient(t, hub, hub.Operator, func(cfg *client.Config) { cfg.HubURL = px.URL })
	toks, err := bank.Tokenize(ctx, protocol.TypeEmail, "retry@example.se")
	if err != nil {
		t.Fatal(err)
	}
	_, jwks := hubtest.NewKey(t)
	name := "Bank A (publ)"
	for _, tc := range []struct {
		name string
		op   string
		f    fault
		call func() error
		sent int
		ok   bool
	}{
		{"a member list answered 502", "GET /v1/admin/members", badGateway, func() error { _, err := op.Members(ctx); return err }, 2, true},
		{"a registration whose answer is lost", "POST /v1/admin/members", lose, func() error {
			_, err := op.AddMember(ctx, api.MemberRequest{ID: "bank-n", Name: "Bank N", Roles: []api.Role{api.RoleCheck}, JWKS: jwks})
			return err
		}, 1, false},
		{"an update whose answer is lost", "PATCH /v1/admin/members/bank-a", lose, func() error {
			_, err := op.UpdateMember(ctx, "bank-a", api.MemberPatch{Name: &name})
			return err
		}, 2, true},
		{"a suspension whose answer is lost", "POST /v1/admin/members/bank-n/suspend", lose, func() error {
			_, err := op.SuspendMember(ctx, "bank-n")
			return err
		}, 2, true},
		{"an erasure whose answer is lost", "POST /v1/admin/erasures", lose, func() error {
			_, err := op.EraseSubject(ctx, toks[0], "gdpr-art-17")
			return err
		}, 1, false},
		{"a backup answered 503 with Retry-After", "GET /v1/admin/backup", busy, func() error {
			_, err := op.Backup(ctx, new(bytes.Buffer))
			return err
		}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := px.count(tc.op)
			px.spoilNext(tc.op, tc.f)
			err := tc.call()
			px.set(nil)
			if sent := px.count(tc.op) - before; sent != tc.sent || (err == nil) != tc.ok {
				t.Errorf("got %d requests and error %v; want %d requests and success %v", sent, err, tc.sent, tc.ok)
			}
		})
	}
	// The registration whose answer was lost was made.
	if _, err := op.Member(ctx, "bank-n"); err != nil {
		t.Errorf("the member whose registration's answer was lost: %v", err)
	}
}
