package console

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// A Chart is a bar chart drawn as SVG on the server, with its numbers as a
// table beside it (the text alternative): Values[category][series].
type Chart struct {
	ID, Title, Desc string
	// Unit names what a bar counts.
	Unit       string
	Categories []string
	Series     []string
	Values     [][]float64
	// Stacked draws a category's series on top of each other; otherwise
	// side by side.
	Stacked bool
	// Marks note categories that stand out (a member far off the
	// baseline), by category.
	Marks map[string]string
}

// palette is the Okabe–Ito colours, each at least 3:1 against white.
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8A6100", "#3B7EA1", "#000000", "#7A3E00"}

// A bar is one rectangle of a chart, with the data it shows.
type bar struct {
	X, Y, W, H float64
	Color      string
	Category   string
	Series     string
	Value      float64
	Label      string
}

type axisTick struct {
	Y     float64
	Label string
}

type catLabel struct {
	X      float64
	Label  string
	Marked bool
}

const (
	chartW, chartH         = 760.0, 300.0
	padL, padR, padT, padB = 56.0, 16.0, 16.0, 64.0
)

var svgTemplate = template.Must(template.New("svg").Funcs(template.FuncMap{"sub": func(a, b float64) float64 { return a - b }}).Parse(`<svg id="{{.C.ID}}" class="chart" role="img" aria-labelledby="{{.C.ID}}-title {{.C.ID}}-desc" viewBox="0 0 {{.W}} {{.H}}" width="100%" data-chart="{{.C.ID}}" data-total="{{.Total}}">
<title id="{{.C.ID}}-title">{{.C.Title}}</title>
<desc id="{{.C.ID}}-desc">{{.C.Desc}}</desc>
<line x1="{{.PadL}}" y1="{{.Base}}" x2="{{.Right}}" y2="{{.Base}}" stroke="#333"/>
{{range .Ticks}}<g class="tick"><line x1="{{$.PadL}}" y1="{{.Y}}" x2="{{$.Right}}" y2="{{.Y}}" stroke="#ddd"/><text x="{{printf "%.1f" (sub $.PadL 6)}}" y="{{.Y}}" text-anchor="end" dominant-baseline="middle">{{.Label}}</text></g>
{{end}}{{range .Bars}}<rect x="{{printf "%.1f" .X}}" y="{{printf "%.1f" .Y}}" width="{{printf "%.1f" .W}}" height="{{printf "%.1f" .H}}" fill="{{.Color}}" data-category="{{.Category}}" data-series="{{.Series}}" data-value="{{.Label}}"><title>{{.Category}}, {{.Series}}: {{.Label}}</title></rect>
{{end}}{{range .Cats}}<text x="{{printf "%.1f" .X}}" y="{{$.LabelY}}" text-anchor="end" transform="rotate(-35 {{printf "%.1f" .X}} {{$.LabelY}})"{{if .Marked}} class="marked" font-weight="bold"{{end}}>{{if .Marked}}⚠ {{end}}{{.Label}}</text>
{{end}}</svg>`))

// SVG draws the chart.
func (c *Chart) SVG() template.HTML {
	max, total := 0.0, 0.0
	for _, row := range c.Values {
		sum := 0.0
		for _, v := range row {
			total += v
			sum += v
			if !c.Stacked {
				max = math.Max(max, v)
			}
		}
		if c.Stacked {
			max = math.Max(max, sum)
		}
	}
	top := niceCeil(max)
	plotW, plotH := chartW-padL-padR, chartH-padT-padB
	base := padT + plotH
	d := struct {
		C                               *Chart
		W, H, PadL, Right, Base, LabelY float64
		Total                           string
		Ticks                           []axisTick
		Bars                            []bar
		Cats                            []catLabel
	}{C: c, W: chartW, H: chartH, PadL: padL, Right: chartW - padR, Base: base, LabelY: base + 14, Total: num(total)}
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		d.Ticks = append(d.Ticks, axisTick{Y: base - plotH*float64(i)/4, Label: num(v)})
	}
	n := max1(len(c.Categories))
	slot := plotW / float64(n)
	gap := slot * 0.2
	for i, cat := range c.Categories {
		x0 := padL + slot*float64(i) + gap/2
		w := slot - gap
		_, marked := c.Marks[cat]
		d.Cats = append(d.Cats, catLabel{X: x0 + w/2 + 4, Label: cat, Marked: marked})
		y := base
		for j, s := range c.Series {
			v := c.Values[i][j]
			if v == 0 {
				continue
			}
			h := plotH * v / top
			b := bar{Color: palette[j%len(palette)], Category: cat, Series: s, Value: v, Label: num(v)}
			if c.Stacked {
				b.X, b.W, b.Y, b.H = x0, w, y-h, h
				y -= h
			} else {
				bw := w / float64(len(c.Series))
				b.X, b.W, b.Y, b.H = x0+bw*float64(j), bw, base-h, h
			}
			d.Bars = append(d.Bars, b)
		}
	}
	var buf bytes.Buffer
	if err := svgTemplate.Execute(&buf, d); err != nil {
		return template.HTML(template.HTMLEscapeString(err.Error()))
	}
	return template.HTML(buf.String())
}

// Legend returns the series with their colours.
func (c *Chart) Legend() []struct{ Name, Color string } {
	var out []struct{ Name, Color string }
	for j, s := range c.Series {
		out = append(out, struct{ Name, Color string }{s, palette[j%len(palette)]})
	}
	return out
}

// Cell returns the value at category i and series j, as text.
func (c *Chart) Cell(i, j int) string { return num(c.Values[i][j]) }

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// niceCeil rounds up to 1, 2, 4 or 8 times a power of ten (at least 4), so
// the axis's four ticks are round.
func niceCeil(v float64) float64 {
	if v <= 4 {
		return 4
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 8, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// The reconciliation baseline: a member is far off it when it tokenized
// more than farOff times the baseline number of identifiers per identity
// checked (the median among members, at least 1), and at least
// farOffMin identifiers.
const (
	farOff    = 3.0
	farOffMin = 10
)

// Charts are what the charts page draws, counted from the verified
// window.
type Charts struct {
	Checks, Flags, Reconciliation, Outcomes, Latency *Chart
	// Baseline is the identifiers tokenized per identity checked that a
	// member is measured against.
	Baseline float64
}

// count counts the window's entries into the charts.
func count(w *Window) *Charts {
	type key struct{ a, b string }
	checks := map[key]float64{}
	flags := map[key]float64{}
	var days []string
	seenDay := map[string]bool{}
	tokenized, checked, outcomes, checksBy := map[string]float64{}, map[string]float64{}, map[string]float64{}, map[string]float64{}
	members := map[string]bool{}
	latency := make([]float64, len(latencyBuckets))
	for _, e := range w.Entries {
		if e.Result != "ok" {
			continue
		}
		day := e.Time.UTC().Format(time.DateOnly)
		if !seenDay[day] {
			seenDay[day] = true
			days = append(days, day)
		}
		n := func(attr string) float64 {
			v, _ := e.Attr(attr)
			f, _ := strconv.ParseUint(v, 10, 64)
			return float64(f)
		}
		switch e.Action {
		case protocol.LogCheck:
			p, _ := e.Attr("purpose")
			checks[key{day, e.Member + " · " + p}]++
			checked[e.Member] += n("tokens")
			checksBy[e.Member]++
			members[e.Member] = true
		case protocol.LogReplicaCheck:
			checked[e.Member] += n("count")
			members[e.Member] = true
		case protocol.LogTokens:
			tokenized[e.Member] += n("count")
			members[e.Member] = true
		case protocol.LogCheckOutcome:
			outcomes[e.Member]++
		case protocol.LogFlagPlaced:
			flags[key{day, "placed"}]++
		case protocol.LogFlagLifted:
			flags[key{day, "lifted"}]++
		case protocol.LogFlagExpired:
			flags[key{day, "expired"}]++
		case protocol.LogDelivery:
			ms := n("latency_ms")
			for i, b := range latencyBuckets {
				if ms < b.below || i == len(latencyBuckets)-1 {
					latency[i]++
					break
				}
			}
		}
	}
	out := &Charts{}
	// Checks per day, by member and purpose.
	var series []string
	seen := map[string]bool{}
	for k := range checks {
		if !seen[k.b] {
			seen[k.b] = true
			series = append(series, k.b)
		}
	}
	sort.Strings(series)
	out.Checks = &Chart{ID: "checks", Title: "Checks per day, by member and purpose", Unit: "checks", Stacked: true, Categories: days, Series: series}
	for _, d := range days {
		row := make([]float64, len(series))
		for j, s := range series {
			row[j] = checks[key{d, s}]
		}
		out.Checks.Values = append(out.Checks.Values, row)
	}
	out.Checks.Desc = fmt.Sprintf("Online checks answered, per day (UTC), stacked by member and purpose: %s in all over %d days.", num(sum(checks)), len(days))
	// Flags per day.
	fs := []string{"placed", "lifted", "expired"}
	out.Flags = &Chart{ID: "flags", Title: "Protection flags placed, lifted and expired per day", Unit: "flags", Categories: days, Series: fs}
	for _, d := range days {
		out.Flags.Values = append(out.Flags.Values, []float64{flags[key{d, "placed"}], flags[key{d, "lifted"}], flags[key{d, "expired"}]})
	}
	out.Flags.Desc = fmt.Sprintf("Flags placed, lifted and expired per day (UTC): %s placed, %s lifted, %s expired.",
		num(colSum(out.Flags.Values, 0)), num(colSum(out.Flags.Values, 1)), num(colSum(out.Flags.Values, 2)))
	// Reconciliation.
	ms := make([]string, 0, len(members))
	for m := range members {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	var ratios []float64
	for _, m := range ms {
		if tokenized[m] > 0 {
			ratios = append(ratios, tokenized[m]/math.Max(checked[m], 1))
		}
	}
	out.Baseline = 1
	if len(ratios) > 0 {
		slices.Sort(ratios)
		out.Baseline = math.Max(1, ratios[len(ratios)/2])
	}
	out.Reconciliation = &Chart{ID: "reconciliation", Title: "Identifiers tokenized beside identities checked, per member", Unit: "identifiers",
		Categories: ms, Series: []string{"tokenized", "checked (online and replica)"}, Marks: map[string]string{}}
	var marked []string
	for _, m := range ms {
		out.Reconciliation.Values = append(out.Reconciliation.Values, []float64{tokenized[m], checked[m]})
		if r := tokenized[m] / math.Max(checked[m], 1); tokenized[m] >= farOffMin && r > farOff*out.Baseline {
			out.Reconciliation.Marks[m] = fmt.Sprintf("tokenized %.1f identifiers per identity checked, over %g times the baseline of %.1f", r, farOff, out.Baseline)
			marked = append(marked, m)
		}
	}
	out.Reconciliation.Desc = fmt.Sprintf("Per member, identifiers tokenized beside identities checked online or in its replica. Baseline %.1f tokenized per checked; far off it (over %g times): %s.",
		out.Baseline, farOff, orNone(marked))
	// Checks without an outcome.
	out.Outcomes = &Chart{ID: "outcomes", Title: "Checks with and without a reported outcome, per member", Unit: "checks", Stacked: true,
		Series: []string{"outcome reported", "no outcome reported"}}
	var without float64
	for _, m := range ms {
		if checksBy[m] == 0 {
			continue
		}
		with := math.Min(outcomes[m], checksBy[m])
		out.Outcomes.Categories = append(out.Outcomes.Categories, m)
		out.Outcomes.Values = append(out.Outcomes.Values, []float64{with, checksBy[m] - with})
		without += checksBy[m] - with
	}
	out.Outcomes.Desc = fmt.Sprintf("Online checks per member, split by whether the member reported an outcome: %s without one.", num(without))
	// Delivery latency.
	out.Latency = &Chart{ID: "latency", Title: "Webhook delivery latency", Unit: "deliveries", Series: []string{"deliveries"}}
	for i, b := range latencyBuckets {
		out.Latency.Categories = append(out.Latency.Categories, b.label)
		out.Latency.Values = append(out.Latency.Values, []float64{latency[i]})
	}
	out.Latency.Desc = fmt.Sprintf("Webhook deliveries by how long they took to be delivered: %s in all.", num(colSum(out.Latency.Values, 0)))
	return out
}

var latencyBuckets = []struct {
	below float64
	label string
}{{10, "< 10 ms"}, {100, "10–100 ms"}, {1000, "0.1–1 s"}, {10_000, "1–10 s"}, {60_000, "10 s–1 min"}, {600_000, "1–10 min"}, {math.Inf(1), "≥ 10 min"}}

func sum[K comparable](m map[K]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

func colSum(v [][]float64, j int) float64 {
	t := 0.0
	for _, row := range v {
		t += row[j]
	}
	return t
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return fmt.Sprint(s)
}
