package console_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/internal/console"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// smallExport exports bank-a's checks from a real hub, and returns the
// bundle's bytes and the log key.
func smallExport(t testing.TB) ([]byte, note.Verifier) {
	t.Helper()
	hub := hubtest.Start(t, hubtest.Options{})
	reg := hub.AddMember(t, "regulator", api.RoleRegulator)
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "a@example.se", "b@example.se")
	for _, p := range []string{"payment", "credit-application"} {
		if _, err := bank.Client().Check(context.Background(), p, toks...); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	key, err := protocol.NewLogVerifier(hub.Keys.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	b, err := console.Export(context.Background(), console.Config{Client: reg.Client(), LogKey: key}, console.Filter{Member: "bank-a", Action: protocol.LogCheck})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return data, key
}

func TestBundle(t *testing.T) {
	data, key := smallExport(t)
	b, err := console.ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := b.Verify(key, nil, 0)
	if err != nil || len(rep.Entries) != 2 {
		t.Fatalf("verify: %v entries, %v; want bank-a's 2 checks", len(b.Entries), err)
	}
	// A witness given and a quorum asked for: the hub's own checkpoint
	// has no cosignature.
	_, wkey, _ := ed25519.GenerateKey(rand.Reader)
	w, _ := torchwood.NewCosignatureSigner("witness.example/w", wkey)
	if _, err := b.Verify(key, []note.Verifier{w.Verifier()}, 1); !errors.Is(err, console.ErrQuorum) {
		t.Errorf("without cosignature: %v, want ErrQuorum", err)
	}
	// Cosigned, it verifies with the quorum.
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(key))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, _ := note.Sign(n, w)
	b2 := *b
	b2.Checkpoint = string(cosigned)
	if rep, err := b2.Verify(key, []note.Verifier{w.Verifier()}, 1); err != nil || rep.Checkpoint.Cosigned() != 1 {
		t.Errorf("cosigned: %v", err)
	}
	// Without the witness's key, its line is listed as unknown, unchecked.
	cp, err := console.OpenCheckpoint(cosigned, key, nil, 0)
	if err != nil || len(cp.Signatures) != 2 || cp.Signatures[0].Kind != "log" || !cp.Signatures[0].Verified ||
		cp.Signatures[1].Kind != "unknown" || cp.Signatures[1].Name != "witness.example/w" || cp.Signatures[1].KeyHash != w.KeyHash() {
		t.Errorf("signatures of a cosigned checkpoint without the witness's key: %+v, %v; want the log's verified and the witness's unknown", cp.Signatures, err)
	}

	tamper := []struct {
		name string
		edit func(b *console.Bundle)
		want error
	}{
		{"a changed line", func(b *console.Bundle) {
			b.Entries[0].Line = strings.Replace(b.Entries[0].Line, "payment", "paymenT", 1)
		}, console.ErrBundleEntry},
		{"a line the filter does not select", func(b *console.Bundle) { b.Filter.Member = "bank-b" }, console.ErrBundleEntry},
		{"out of order", func(b *console.Bundle) { b.Entries[0], b.Entries[1] = b.Entries[1], b.Entries[0] }, console.ErrBundleEntry},
		{"a proof of another", func(b *console.Bundle) { b.Entries[0].Proof = b.Entries[1].Proof }, console.ErrBundleEntry},
		{"a changed checkpoint", func(b *console.Bundle) { b.Checkpoint = strings.Replace(b.Checkpoint, "\n", "\n1", 1) }, protocol.ErrCheckpointSignature},
		{"another log", func(b *console.Bundle) { b.Log = "elsewhere/log" }, console.ErrBundleMalformed},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := console.ParseBundle(data)
			tc.edit(c)
			if _, err := c.Verify(key, nil, 0); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	for _, bad := range []string{``, `{}`, `{"format":"sparr-log-bundle/2","checkpoint":"x"}`, `{"format":"sparr-log-bundle/1","checkpoint":"x","extra":1}`, string(data) + `{}`} {
		if _, err := console.ParseBundle([]byte(bad)); !errors.Is(err, console.ErrBundleMalformed) {
			t.Errorf("ParseBundle(%.40q): %v, want ErrBundleMalformed", bad, err)
		}
	}
}

// FuzzBundle: no input makes the parser or verifier panic, and whatever
// verifies is a bundle whose every entry parses.
func FuzzBundle(f *testing.F) {
	data, key := smallExport(f)
	f.Add(data)
	f.Add([]byte(`{"format":"sparr-log-bundle/1","checkpoint":"x\n","entries":[{"index":0,"line":"","proof":["AAAA"]}]}`))
	f.Add(bytes.Replace(data, []byte("payment"), []byte("paymenu"), 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		bundle, err := console.ParseBundle(b)
		if err != nil {
			return
		}
		rep, err := bundle.Verify(key, nil, 0)
		if err != nil {
			return
		}
		if len(rep.Entries) != len(bundle.Entries) {
			t.Fatalf("verified %d of %d entries", len(rep.Entries), len(bundle.Entries))
		}
	})
}

// TestWitnessKeys: a cosignature key and a note key parse; others do not.
func TestWitnessKeys(t *testing.T) {
	_, wkey, _ := ed25519.GenerateKey(rand.Reader)
	w, _ := torchwood.NewCosignatureSigner("witness.example/w", wkey)
	if v, err := console.ParseWitnessKey(w.Verifier().String()); err != nil || v.KeyHash() != w.KeyHash() {
		t.Errorf("cosignature key: %v", err)
	}
	_, vkey, _ := note.GenerateKey(rand.Reader, "witness.example/n")
	if _, err := console.ParseWitnessKey(vkey); err != nil {
		t.Errorf("note key: %v", err)
	}
	good := w.Verifier().String()
	for _, bad := range []string{"", "x", good[:len(good)-4], strings.Replace(good, "+", "+0", 1)} {
		if _, err := console.ParseWitnessKey(bad); err == nil {
			t.Errorf("ParseWitnessKey(%q) accepted", bad)
		}
	}
}

// TestWindowCatchesChangedEntry: an entry line served changed (by a proxy
// before a real hub) fails the charts' window, and the overview says so.
func TestWindowCatchesChangedEntry(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	reg := hub.AddMember(t, "regulator", api.RoleRegulator)
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "a@example.se")
	if _, err := bank.Client().Check(context.Background(), "payment", toks...); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	key, _ := protocol.NewLogVerifier(hub.Keys.LogVerifier)
	u, _ := url.Parse(hub.URL)
	p := httputil.NewSingleHostReverseProxy(u)
	p.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.URL.Path != "/v1/log/entries" {
			return nil
		}
		b, _ := io.ReadAll(resp.Body)
		b = bytes.Replace(b, []byte("purpose=payment"), []byte("purpose=paymenu"), 1)
		resp.Body, resp.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	proxy := httptest.NewServer(p)
	defer proxy.Close()
	c, err := client.New(client.Config{HubURL: proxy.URL, MemberID: reg.ID, Key: reg.Key})
	if err != nil {
		t.Fatal(err)
	}
	con, err := console.New(console.Config{Client: c, LogKey: key})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
	req.AddCookie(&http.Cookie{Name: "sparr-console", Value: con.Token()})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(page), "VERIFICATION FAILED: entry") || !strings.Contains(string(page), "do not make the checkpoint") {
		t.Errorf("the overview over a changed entry:\n%s\nwant VERIFICATION FAILED", page)
	}
}

// TestChartAxis: the axis tops a chart's largest bar with four round
// ticks.
func TestChartAxis(t *testing.T) {
	for _, tc := range []struct{ max, top string }{{"0", "4"}, {"3", "4"}, {"7", "8"}, {"40", "40"}, {"41", "80"}, {"950", "1000"}} {
		c := &console.Chart{ID: "c", Categories: []string{"a"}, Series: []string{"s"}, Values: [][]float64{{atof(t, tc.max)}}}
		svg := string(c.SVG())
		if !strings.Contains(svg, ">"+tc.top+"</text>") {
			t.Errorf("largest bar %s: axis %s, want its top at %s", tc.max, svg, tc.top)
		}
	}
}

func atof(t *testing.T, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestParseFilter: times as RFC 3339, a date, or a date and minute; other
// text is refused, naming the field.
func TestParseFilter(t *testing.T) {
	f, err := console.ParseFilter("bank-a", "check", "2026-11-21", "2026-11-22T10:30")
	if err != nil || f.From != time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC) || f.To != time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC) {
		t.Errorf("got %+v, %v", f, err)
	}
	e := &protocol.LogEntry{Member: "bank-a", Action: protocol.LogCheck, Time: f.From}
	if !f.Match(e) {
		t.Errorf("%+v does not select an entry at its From", f)
	}
	e.Time = f.To
	if f.Match(e) {
		t.Errorf("%+v selects an entry at its To", f)
	}
	if _, err := console.ParseFilter("", "", "yesterday", ""); err == nil || !strings.Contains(err.Error(), "from") {
		t.Errorf("from=yesterday: %v, want an error naming from", err)
	}
}
