// Package console is the regulator's console: a web server on the
// regulator's own machine that reads the hub through its API, with the
// regulator's key, verifies what it reads — checkpoints with the pinned
// log key and the witnesses' keys, entries with their inclusion proofs or
// the tree's hash tiles — and shows the exchange as pages: an overview,
// charts, a log browser, and exports as self-verifying bundles.
//
// Nothing on its pages is taken from the hub unverified except where a
// page says so: the members' list and the state of delivery
// (GET /v1/audit/members), which the log cannot prove.
//
// # Bundles
//
// An export is a [Bundle]: a JSON document holding a signed checkpoint and
// the entries a [Filter] selected, each with its inclusion proof.
// [ParseBundle] reads one and [Bundle.Verify] checks it offline:
//
//	{
//	  "format": "sparr-log-bundle/1",
//	  "log": "hub.example/sparr-log",
//	  "exported_at": "2026-11-21T10:00:00Z",
//	  "filter": {"member": "bank-a", "action": "check"},
//	  "checkpoint": "hub.example/sparr-log\n131022\n25qu…=\n\n— hub.example/sparr-log pd…\n",
//	  "entries": [{"index": 41, "line": "sparr-log/1 41 … check ok …\n", "proof": ["…", …]}]
//	}
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// Config configures a [Console].
type Config struct {
	// Client reads the hub as a member with the regulator role.
	Client *client.Client
	// HubURL is the hub's URL, for people.
	HubURL string
	// LogKey is the log's key, obtained out of band.
	LogKey note.Verifier
	// Witnesses are the keys of witnesses whose cosignatures the console
	// checks; Quorum is how many must have cosigned a checkpoint for it
	// to count as witnessed (0: none needed).
	Witnesses []note.Verifier
	Quorum    int
	// Days is how many days back the charts count; default 30.
	Days int
	// MaxWindow is the most entries the charts count (the latest);
	// default 100 000.
	MaxWindow int
	// MaxExport is the most entries an export holds; default 10 000.
	MaxExport int
	// Token, if set, must be presented once (/login?token=) to open the
	// console, which then keeps it in a cookie; New makes one if empty.
	Token string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log logs the console's failures; default slog.Default().
	Log *slog.Logger
}

// A Console serves the regulator's pages.
type Console struct {
	cfg   Config
	pages *template.Template

	mu      sync.Mutex
	last    *Checkpoint // the latest checkpoint verified
	win     *Window
	winSize uint64
}

//go:embed templates/*.html static/*
var files embed.FS

// New makes a console.
func New(cfg Config) (*Console, error) {
	if cfg.Client == nil || cfg.LogKey == nil {
		return nil, errors.New("console: Config.Client and Config.LogKey are required")
	}
	if cfg.Quorum < 0 || cfg.Quorum > len(cfg.Witnesses) {
		return nil, fmt.Errorf("console: quorum %d of %d witnesses", cfg.Quorum, len(cfg.Witnesses))
	}
	if cfg.Days <= 0 {
		cfg.Days = 30
	}
	if cfg.MaxWindow <= 0 {
		cfg.MaxWindow = 100_000
	}
	if cfg.MaxExport <= 0 {
		cfg.MaxExport = 10_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Token == "" {
		b := make([]byte, 16)
		rand.Read(b)
		cfg.Token = hex.EncodeToString(b)
	}
	pages, err := template.New("").Funcs(template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"ago":   func(t time.Time) string { return ago(cfg.Now().Sub(t)) },
		"hex32": func(v uint32) string { return fmt.Sprintf("%08x", v) },
		"b64":   func(c *Checkpoint) string { return rootB64(c) },
		"query": func(f Filter) template.URL { return template.URL(filterQuery(f).Encode()) },
		"date": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format(time.RFC3339)
		},
	}).ParseFS(files, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &Console{cfg: cfg, pages: pages}, nil
}

// Token returns the token that opens the console: visit /login?token=….
func (c *Console) Token() string { return c.cfg.Token }

// Handler returns the console's pages. It answers only requests to a
// loopback host name (no DNS rebinding) that carry the console's cookie.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(files, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", c.login)
	mux.HandleFunc("GET /{$}", c.overview)
	mux.HandleFunc("GET /charts", c.charts)
	mux.HandleFunc("GET /log", c.browse)
	mux.HandleFunc("GET /export", c.export)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			http.Error(w, "the console answers on loopback only", http.StatusMisdirectedRequest)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if r.URL.Path != "/login" && r.URL.Path != "/static/console.css" {
			ck, err := r.Cookie("sparr-console")
			if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(c.cfg.Token)) != 1 {
				http.Error(w, "open the console with the URL sparr console printed", http.StatusForbidden)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if subtle.ConstantTimeCompare([]byte(r.URL.Query().Get("token")), []byte(c.cfg.Token)) != 1 {
		http.Error(w, "wrong or missing token: open the console with the URL sparr console printed", http.StatusForbidden)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "sparr-console", Value: c.cfg.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// page is what every page shows: the checkpoint, or why there is none.
type page struct {
	Title      string
	Nav        string
	Hub        string
	Checkpoint *Checkpoint
	Quorum     int
	// Warning says the checkpoint is not witnessed by a quorum.
	Warning string
	Error   string
	Data    any
}

// start verifies the latest checkpoint for a page; a failure is shown on
// the page, and the page's data left out.
func (c *Console) start(ctx context.Context, title, nav string) (*page, bool) {
	p := &page{Title: title, Nav: nav, Hub: c.cfg.HubURL, Quorum: c.cfg.Quorum}
	cp, err := c.latest(ctx)
	var qe *QuorumError
	switch {
	case errors.As(err, &qe):
		p.Checkpoint, p.Warning = cp, qe.Error()
	case err != nil:
		p.Error = describe(err)
		return p, false
	default:
		p.Checkpoint = cp
	}
	return p, true
}

// describe says what went wrong, for a page.
func describe(err error) string {
	var ce *protocol.CheckpointError
	var ie *protocol.InconsistencyError
	switch {
	case errors.As(err, &ce):
		return "VERIFICATION FAILED: the hub's checkpoint is not signed by the log key you gave: " + err.Error()
	case errors.As(err, &ie):
		return "VERIFICATION FAILED: the hub's log does not extend the checkpoint this console verified earlier: " + err.Error()
	case errors.Is(err, ErrBundleEntry):
		return "VERIFICATION FAILED: " + err.Error()
	}
	return "could not read the hub: " + err.Error()
}

func (c *Console) render(w http.ResponseWriter, name string, p *page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if p.Error != "" {
		w.WriteHeader(http.StatusBadGateway)
	}
	if err := c.pages.ExecuteTemplate(w, name, p); err != nil {
		c.cfg.Log.Error("console: render", "page", name, "error", err)
	}
}

// An overviewData is the overview page.
type overviewData struct {
	LastEntry   *protocol.LogEntry
	LastErr     string
	Members     []memberRow
	MembersErr  string
	Window      *Window
	WindowErr   string
	ActionCount []actionCount
}

type memberRow struct {
	api.AuditMember
	Delivered int
	State     string
}

type actionCount struct {
	Action string
	Known  bool
	Count  int
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	p, ok := c.start(r.Context(), "Overview", "overview")
	if ok {
		d := &overviewData{}
		p.Data = d
		if p.Checkpoint.Size > 0 {
			last := api.AuditEntry{Index: p.Checkpoint.Size - 1}
			line, _, err := c.lastEntry(r.Context(), p.Checkpoint, &last)
			if err != nil {
				d.LastErr = describe(err)
			} else {
				d.LastEntry = line
			}
		}
		win, err := c.window(r.Context(), p.Checkpoint)
		if err != nil {
			d.WindowErr = describe(err)
		}
		d.Window = win
		delivered := map[string]int{}
		counts := map[string]int{}
		if win != nil {
			for _, e := range win.Entries {
				counts[string(e.Action)]++
				if e.Action == protocol.LogDelivery && e.Result == "ok" {
					delivered[e.Member]++
				}
			}
		}
		known := map[string]bool{}
		for _, a := range protocol.LogActions() {
			known[string(a)] = true
		}
		for a, n := range counts {
			d.ActionCount = append(d.ActionCount, actionCount{Action: a, Known: known[a], Count: n})
		}
		sort.Slice(d.ActionCount, func(i, j int) bool {
			if d.ActionCount[i].Count != d.ActionCount[j].Count {
				return d.ActionCount[i].Count > d.ActionCount[j].Count
			}
			return d.ActionCount[i].Action < d.ActionCount[j].Action
		})
		ms, err := c.cfg.Client.AuditMembers(r.Context())
		if err != nil {
			d.MembersErr = "could not read the members: " + err.Error()
		} else {
			for _, m := range ms.Members {
				row := memberRow{AuditMember: m, Delivered: delivered[m.ID], State: "no endpoint"}
				if dl := m.Delivery; dl != nil {
					switch {
					case dl.Status == api.EndpointPaused:
						row.State = "paused"
					case dl.Status == api.EndpointDisabled:
						row.State = "disabled"
					case dl.Failures > 0 && dl.Backlog > 0:
						row.State = "retrying"
					default:
						row.State = string(dl.Status)
					}
				}
				d.Members = append(d.Members, row)
			}
		}
	}
	c.render(w, "overview.html", p)
}

// lastEntry reads and proves the checkpoint's last entry, whose time is
// the checkpoint's age.
func (c *Console) lastEntry(ctx context.Context, cp *Checkpoint, a *api.AuditEntry) (*protocol.LogEntry, string, error) {
	p, err := c.cfg.Client.Log().InclusionProof(ctx, a.Index, cp.Size)
	if err != nil {
		return nil, "", err
	}
	b := Bundle{Log: cp.Origin, Entries: []BundleEntry{{Index: a.Index, Line: p.Entry, Proof: p.Proof}}}
	es, err := b.checkEntries(cp)
	if err != nil {
		return nil, "", err
	}
	return es[0], p.Entry, nil
}

func (c *Console) charts(w http.ResponseWriter, r *http.Request) {
	p, ok := c.start(r.Context(), "Charts", "charts")
	if ok {
		win, err := c.window(r.Context(), p.Checkpoint)
		if err != nil {
			p.Error = describe(err)
		} else {
			ch := count(win)
			p.Data = struct {
				Window *Window
				Charts []*Chart
				C      *Charts
			}{win, []*Chart{ch.Checks, ch.Flags, ch.Reconciliation, ch.Outcomes, ch.Latency}, ch}
		}
	}
	c.render(w, "charts.html", p)
}

// parseFilter reads a filter from a query; a bad value is an error that
// names it.
func parseFilter(q url.Values) (Filter, error) {
	return ParseFilter(q.Get("member"), q.Get("action"), q.Get("from"), q.Get("to"))
}

// ParseFilter makes a filter of a member, an action and times (RFC 3339,
// a date, or a date and minute, UTC); empty ones select all.
func ParseFilter(member, action, from, to string) (Filter, error) {
	f := Filter{Member: member, Action: protocol.LogAction(action)}
	for _, t := range []struct {
		name, v string
		to      *time.Time
	}{{"from", from, &f.From}, {"to", to, &f.To}} {
		v := t.v
		if v == "" {
			continue
		}
		var err error
		if *t.to, err = time.Parse(time.RFC3339, v); err != nil {
			if *t.to, err = time.Parse("2006-01-02T15:04", v); err != nil {
				if *t.to, err = time.Parse(time.DateOnly, v); err != nil {
					return f, fmt.Errorf("%s: %q is not a time such as 2026-11-21 or 2026-11-21T10:00:00Z", t.name, v)
				}
			}
		}
	}
	return f, nil
}

func filterQuery(f Filter) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"member": f.Member, "action": string(f.Action)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.From.IsZero() {
		q.Set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		q.Set("to", f.To.UTC().Format(time.RFC3339))
	}
	return q
}

type browseData struct {
	Filter  Filter
	Entries []EntryCheck
	Next    *uint64
	Failed  int
	Actions []protocol.LogAction
}

func (c *Console) browse(w http.ResponseWriter, r *http.Request) {
	p, ok := c.start(r.Context(), "Log", "log")
	if ok {
		f, err := parseFilter(r.URL.Query())
		d := &browseData{Filter: f, Actions: protocol.LogActions()}
		p.Data = d
		if err != nil {
			p.Error = err.Error()
			w.WriteHeader(http.StatusBadRequest)
		} else {
			var after *uint64
			if v := r.URL.Query().Get("after"); v != "" {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					p.Error = "after: not an entry index"
				}
				after = &n
			}
			if p.Error == "" {
				d.Entries, d.Next, err = c.entryPage(r.Context(), p.Checkpoint, f, after, 50)
				if err != nil {
					p.Error = describe(err)
				}
				for _, e := range d.Entries {
					if e.Status == "failed" {
						d.Failed++
					}
				}
			}
		}
	}
	c.render(w, "log.html", p)
}

// Export builds a bundle of the entries f selects (at most max, the
// first), each proved in the tree of the latest checkpoint, read and
// verified through cl with the log key and witnesses.
func Export(ctx context.Context, cfg Config, f Filter) (*Bundle, error) {
	c, err := New(cfg)
	if err != nil {
		return nil, err
	}
	cp, err := c.latest(ctx)
	if err != nil {
		return nil, err
	}
	return c.bundle(ctx, cp, f)
}

func (c *Console) bundle(ctx context.Context, cp *Checkpoint, f Filter) (*Bundle, error) {
	b := &Bundle{Format: BundleFormat, Log: cp.Origin, Hub: c.cfg.HubURL, ExportedAt: c.cfg.Now().UTC(), Filter: f, Checkpoint: string(cp.Note), Entries: []BundleEntry{}}
	var after *uint64
	for {
		page, err := c.cfg.Client.AuditEntries(ctx, client.AuditFilter{Member: f.Member, Action: f.Action, From: f.From, To: f.To}, after, api.MaxLogPage)
		if err != nil {
			return nil, err
		}
		for _, a := range page.Entries {
			if a.Index >= cp.Size {
				return b, nil
			}
			if len(b.Entries) == c.cfg.MaxExport {
				b.Truncated = true
				return b, nil
			}
			line, proof, err := c.proveEntry(ctx, cp, &a)
			if err != nil {
				return nil, err
			}
			b.Entries = append(b.Entries, BundleEntry{Index: a.Index, Line: line, Proof: proof})
		}
		if page.Next == nil {
			return b, nil
		}
		after = page.Next
	}
}

func (c *Console) export(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cp, err := c.latest(r.Context())
	var qe *QuorumError
	if err != nil && !errors.As(err, &qe) {
		http.Error(w, describe(err), http.StatusBadGateway)
		return
	}
	b, err := c.bundle(r.Context(), cp, f)
	if err != nil {
		http.Error(w, describe(err), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="sparr-log-bundle-%d.json"`, cp.Size))
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(b)
}

func rootB64(c *Checkpoint) string {
	if c == nil {
		return ""
	}
	return c.Root.String()
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "in the future"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%.1f h ago", d.Hours())
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
