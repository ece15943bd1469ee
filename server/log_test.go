package server_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

func openCheckpoint(t *testing.T, hub *hubtest.Hub, m *hubtest.Member) *protocol.Checkpoint {
	t.Helper()
	resp := m.Do(t, http.MethodGet, "/v1/log/checkpoint", "", nil)
	mustStatus(t, resp, http.StatusOK)
	key, err := protocol.NewLogVerifier(hub.Configuration().Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := protocol.OpenCheckpoint(resp.Body, key)
	if err != nil {
		t.Fatalf("checkpoint %q: %v", resp.Body, err)
	}
	return c
}

func proof(t *testing.T, m *hubtest.Member, path string) []tlog.Hash {
	t.Helper()
	resp := m.Do(t, http.MethodGet, path, "", nil)
	mustStatus(t, resp, http.StatusOK)
	var p server.ProofResponse
	resp.JSON(t, &p)
	out := make([]tlog.Hash, len(p.Proof))
	for i, s := range p.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("proof hash %q", s)
		}
		copy(out[i][:], b)
	}
	return out
}

// TestEveryWriteIsProvablyLogged: each write's answer names its log index,
// and the entry at that index is provably in the checkpoint after it.
func TestEveryWriteIsProvablyLogged(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: server.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	bank := hub.AddMember(t, "bank-a", federation.RoleFlag, federation.RoleCheck, federation.RoleSuspicion)
	first := openCheckpoint(t, hub, bank) // a fresh hub has a checkpoint from its first start
	if first.Size == 0 || first.Origin != hub.Keys.LogOrigin {
		t.Fatalf("first checkpoint %s", first)
	}
	toks := bank.Tokenize(t, protocol.TypeEmail, "proof1@example.se", "proof2@example.se")
	var indexes []uint64
	f := place(t, bank, toks[0])
	indexes = append(indexes, f.LogIndex)
	var lifted, reported struct {
		LogIndex uint64 `json:"log_index"`
	}
	bank.Submit(t, "/v1/flags/"+f.Flag.FlagID+"/lift", protocol.LiftFlag{FlagID: f.Flag.FlagID}).JSON(t, &lifted)
	bank.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[1:], Category: protocol.CategoryOther, PoliceReport: report}).JSON(t, &reported)
	indexes = append(indexes, lifted.LogIndex, reported.LogIndex, check(t, bank, "payment", toks...).LogIndex)

	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	latest := openCheckpoint(t, hub, bank)
	lines, err := hub.Store.LogEntries(0, latest.Size)
	if err != nil {
		t.Fatal(err)
	}
	for _, idx := range indexes {
		p := proof(t, bank, fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", idx, latest.Size))
		if err := tlog.CheckRecord(p, int64(latest.Size), latest.Root, int64(idx), tlog.RecordHash(lines[idx])); err != nil {
			t.Errorf("entry %d is not provably in checkpoint %s: %v", idx, latest, err)
		}
	}
	// The latest extends the first.
	p := proof(t, bank, fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", first.Size, latest.Size))
	if err := tlog.CheckTree(p, int64(latest.Size), latest.Root, int64(first.Size), first.Root); err != nil {
		t.Errorf("consistency %d → %d: %v", first.Size, latest.Size, err)
	}
	// An index past the tree is refused.
	resp := bank.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", latest.Size, latest.Size), "", nil)
	if resp.Status != http.StatusNotFound {
		t.Errorf("inclusion past the tree: %d, want 404", resp.Status)
	}
	// The lift erased the placement's details: a tombstone follows it.
	var tombstones []string
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogActionErased {
			v, _ := e.Attr("index")
			tombstones = append(tombstones, v)
		}
	}
	if len(tombstones) != 1 || tombstones[0] != fmt.Sprint(f.LogIndex) {
		t.Errorf("tombstones %v, want one naming the placement's entry %d", tombstones, f.LogIndex)
	}
}

func TestAuditAPI(t *testing.T) {
	clock := hubtest.NewClock(start)
	hub := hubtest.Start(t, hubtest.Options{Clock: clock})
	reg := hub.AddMember(t, "regulator", federation.RoleRegulator)
	a := hub.AddMember(t, "bank-a", federation.RoleCheck)
	b := hub.AddMember(t, "bank-b", federation.RoleCheck)
	toks := a.Tokenize(t, protocol.TypeEmail, "audit@example.se")
	check(t, a, "payment", toks...)
	clock.Advance(24 * time.Hour)
	check(t, b, "credit-application", toks...)
	check(t, b, "account-opening", toks...)
	a.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "gambling", "tokens": []string{toks[0].String()}}) // refused

	// Filtered entries.
	resp := reg.Do(t, http.MethodGet, "/v1/audit/entries?member=bank-b&action=check", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var entries struct {
		Entries []server.AuditEntry `json:"entries"`
	}
	resp.JSON(t, &entries)
	if len(entries.Entries) != 2 || entries.Entries[0].Attrs["purpose"] != "credit-application" {
		t.Errorf("bank-b's checks: %+v, want its two", entries.Entries)
	}
	// A time range, found by binary search.
	from := start.Add(12 * time.Hour).Format(time.RFC3339)
	resp = reg.Do(t, http.MethodGet, "/v1/audit/entries?action=check&from="+from, "", nil)
	resp.JSON(t, &entries)
	if len(entries.Entries) != 3 || entries.Entries[2].Result != "rejected:validation-failed" {
		t.Errorf("checks from %s: %+v, want the three of the second day, the last refused", from, entries.Entries)
	}
	// Stats.
	resp = reg.Do(t, http.MethodGet, "/v1/audit/stats", "", nil)
	mustStatus(t, resp, http.StatusOK)
	var st server.AuditStats
	resp.JSON(t, &st)
	if st.Actions["check"] != 4 || st.Members["bank-b"] != 2 || st.Refused["validation-failed"] != 1 || len(st.Days) != 2 {
		t.Errorf("stats %+v, want 4 checks (one refused), 2 by bank-b, over two days", st)
	}
	// Exports.
	resp = reg.Do(t, http.MethodGet, "/v1/audit/export?format=csv&action=check", "", nil)
	mustStatus(t, resp, http.StatusOK)
	if lines := strings.Count(string(resp.Body), "\n"); lines != 5 || !strings.HasPrefix(string(resp.Body), "index,time,member,action") {
		t.Errorf("CSV export:\n%s\nwant a header and four rows", resp.Body)
	}
	resp = reg.Do(t, http.MethodGet, "/v1/audit/export?format=jsonl&member=bank-a", "", nil)
	if lines := strings.Count(string(resp.Body), "\n"); resp.Status != http.StatusOK || lines < 3 {
		t.Errorf("JSONL export: %d, %d lines", resp.Status, lines)
	}
	// Raw entries are the exact lines.
	resp = reg.Do(t, http.MethodGet, "/v1/log/entries?start=0&end=3", "", nil)
	mustStatus(t, resp, http.StatusOK)
	lines, _ := hub.Store.LogEntries(0, 3)
	if got := strings.Join(strings.SplitAfter(string(resp.Body), "\n"), ""); got != string(lines[0])+string(lines[1])+string(lines[2]) {
		t.Errorf("raw entries differ from the store's")
	}
}

func TestErasureReachesEveryMember(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: server.Policy{SuspicionLegalBasis: "brottsdatalagen"}})
	bank := hub.AddMember(t, "bank-a", federation.RoleFlag, federation.RoleCheck, federation.RoleSuspicion)
	r := hub.NewReceiver(t, hub.AddMember(t, "bank-b", federation.RoleCheck))
	r.Register(t)
	r.WaitEvent(t, wait, protocol.EventVerification)
	toks := bank.Tokenize(t, protocol.TypePersonalNumber, "190905271474", "200002292399")
	f := place(t, bank, toks[0])
	mustStatus(t, bank.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks, Category: protocol.CategoryIdentityTheft, PoliceReport: report}), http.StatusCreated)
	check(t, bank, "credit-application", toks...)

	resp := hub.Operator.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]string{"subject": toks[0].String(), "legal_basis": "gdpr-art-17"})
	mustStatus(t, resp, http.StatusOK)
	var out struct {
		RecordsErased    int `json:"records_erased"`
		LogEntriesErased int `json:"log_entries_erased"`
	}
	resp.JSON(t, &out)
	if out.RecordsErased < 3 || out.LogEntriesErased < 3 {
		t.Errorf("erased %+v, want the flag's and the suspicion's records, and the details of the placement, report and check", out)
	}
	// The subject is gone from the hub …
	if res := check(t, bank, "credit-application", toks[0]).Results[0]; res.Advice != server.AdviceNone || res.Flag != nil || res.Suspicions != nil {
		t.Errorf("check after erasure: %+v, want nothing", res)
	}
	if fl, _ := hub.Store.Flag(f.Flag.FlagID); fl.Status != "erased" || fl.Subject != "" {
		t.Errorf("flag after erasure: %+v", fl)
	}
	// … and every member is told to erase it.
	got := r.WaitEvent(t, wait, protocol.EventSubjectErased)
	if ev := got.Record.Event.(protocol.SubjectErased); ev.LegalBasis != "gdpr-art-17" {
		t.Errorf("erasure record %+v", ev)
	}
	// The log keeps the erasure and a tombstone per erased entry, and
	// still holds no token.
	n := 0
	for _, e := range hub.LogEntries(t) {
		if e.Action == protocol.LogActionErased {
			if b, _ := e.Attr("basis"); b == "gdpr-art-17" {
				n++
			}
		}
	}
	if n != out.LogEntriesErased {
		t.Errorf("%d gdpr-art-17 tombstones, want %d", n, out.LogEntriesErased)
	}
	assertLogHoldsNoTokens(t, hub, toks...)
}
