package server_test

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

const openAPIFile = "../docs/openapi.yaml"

// An apiDoc is docs/openapi.yaml as a JSON value: objects are
// map[string]any, numbers float64.
type apiDoc map[string]any

var loadOpenAPI = sync.OnceValues(func() (apiDoc, error) {
	b, err := os.ReadFile(filepath.FromSlash(openAPIFile))
	if err != nil {
		return nil, err
	}
	return parseOpenAPI(b)
})

// parseOpenAPI parses the document (duplicate keys are refused) and
// normalises it to what encoding/json would decode.
func parseOpenAPI(b []byte) (apiDoc, error) {
	var raw any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %w", openAPIFile, err)
	}
	j, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not a JSON-compatible document: %w", openAPIFile, err)
	}
	var doc apiDoc
	if err := json.Unmarshal(j, &doc); err != nil {
		return nil, fmt.Errorf("%s is not a mapping at the top: %w", openAPIFile, err)
	}
	return doc, nil
}

func openAPI(t testing.TB) apiDoc {
	t.Helper()
	doc, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns "METHOD /path" → operation for every operation of the
// document.
func (d apiDoc) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	paths, _ := d["paths"].(map[string]any)
	for p, item := range paths {
		item, _ := item.(map[string]any)
		for k, op := range item {
			if op, ok := op.(map[string]any); ok && slices.Contains(httpMethods, k) {
				out[strings.ToUpper(k)+" "+p] = op
			}
		}
	}
	return out
}

// resolve follows a local "$ref" ("#/components/…") to its target.
func (d apiDoc) resolve(ref string) (any, error) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("$ref %q is not local to the document", ref)
	}
	var cur any = map[string]any(d)
	for _, part := range strings.Split(rest, "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q: %q is not inside an object", ref, part)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("$ref %q: no %q", ref, part)
		}
	}
	return cur, nil
}

// deref returns v, or what its "$ref" points at, repeatedly.
func (d apiDoc) deref(v any) (map[string]any, error) {
	for range 10 {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", v)
		}
		ref, ok := m["$ref"].(string)
		if !ok {
			return m, nil
		}
		var err error
		if v, err = d.resolve(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("$ref chain too long")
}

// refs returns every "$ref" in v with where it is.
func refs(v any, at string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == "$ref" {
				out[at+"/$ref"] = s
				continue
			}
			refs(e, at+"/"+k, out)
		}
	case []any:
		for i, e := range v {
			refs(e, fmt.Sprintf("%s/%d", at, i), out)
		}
	}
}

func routeKey(r server.Route) string { return r.Method + " " + r.OpenAPIPath() }

func sortedRoles(roles []api.Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = string(r)
	}
	sort.Strings(out)
	return out
}

func stringList(v any) ([]string, bool) {
	l, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, len(l))
	for i, e := range l {
		if out[i], ok = e.(string); !ok {
			return nil, false
		}
	}
	return out, true
}

var problemSlugs = func() map[string]protocol.ProblemType {
	m := map[string]protocol.ProblemType{}
	for _, p := range protocol.ProblemTypes() {
		m[p.Slug()] = p
	}
	return m
}()

// authProblems are what every route behind a bearer token can answer.
var authProblems = []string{"unauthenticated", "bearer-expired", "forbidden", "member-suspended", "rate-limited"}

// TestOpenAPIDocumentsEveryRoute holds docs/openapi.yaml to the route
// table: the same routes, roles, rate classes and security, and the problem
// types each route lists are real and their statuses documented.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	doc := openAPI(t)
	if v, _ := doc["openapi"].(string); !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(v) {
		t.Fatalf("openapi is %q, want 3.1.x", v)
	}
	ops := doc.operations()
	routes := map[string]server.Route{}
	for _, r := range server.Routes() {
		routes[routeKey(r)] = r
	}
	// What the hub really serves: every route its engine holds, whether or
	// not it came from server.Routes.
	served := map[string]bool{}
	for _, r := range hubtest.Start(t, hubtest.Options{}).EngineRoutes() {
		served[routeKey(r)] = true
	}
	for key := range served {
		if _, ok := ops[key]; !ok {
			t.Errorf("got no %s in %s, want every route the hub serves documented", key, openAPIFile)
		}
		if _, ok := routes[key]; !ok {
			t.Errorf("got %s served but not in server.Routes, want every route there (with its roles and rate class)", key)
		}
	}
	for key := range ops {
		if !served[key] {
			t.Errorf("got %s in %s, want only routes the hub serves", key, openAPIFile)
		}
	}
	for key, r := range routes {
		op, ok := ops[key]
		if !ok {
			continue
		}
		t.Run(key, func(t *testing.T) {
			checkOperation(t, doc, r, op)
		})
	}
}

func checkOperation(t *testing.T, doc apiDoc, r server.Route, op map[string]any) {
	for _, k := range []string{"summary", "description", "operationId"} {
		if s, _ := op[k].(string); strings.TrimSpace(s) == "" {
			t.Errorf("got an empty %s, want text for a bank's integration team", k)
		}
	}
	desc, _ := op["description"].(string)

	roles, ok := stringList(op["x-sparr-roles"])
	if !ok {
		t.Errorf("got x-sparr-roles %v, want a list of roles", op["x-sparr-roles"])
	}
	sort.Strings(roles)
	if want := sortedRoles(r.Roles); !slices.Equal(roles, want) {
		t.Errorf("got x-sparr-roles %q, want %q", roles, want)
	}
	if !strings.Contains(desc, "Roles:") {
		t.Errorf("got a description without \"Roles:\", want it to say which roles may call the route")
	}
	for _, role := range r.Roles {
		if !strings.Contains(desc, "`"+string(role)+"`") {
			t.Errorf("got a description without role `%s`, want every role named", role)
		}
	}
	if class, ok := op["x-sparr-rate-class"].(string); !ok || class != r.Class {
		t.Errorf("got x-sparr-rate-class %v, want %q", op["x-sparr-rate-class"], r.Class)
	}

	sec, present := op["security"]
	secList, _ := sec.([]any)
	switch {
	case !present:
		t.Errorf("got no security, want it stated (security: [] for a public route)")
	case r.Public() && len(secList) != 0:
		t.Errorf("got security %v on a public route, want []", sec)
	case !r.Public() && (len(secList) != 1 || !reflect.DeepEqual(secList[0], map[string]any{"memberBearer": []any{}})):
		t.Errorf("got security %v, want [{memberBearer: []}]", sec)
	}

	responses, _ := op["responses"].(map[string]any)
	if len(responses) == 0 {
		t.Fatalf("got no responses, want them documented")
	}
	hasSuccess := false
	for code, resp := range responses {
		status, err := strconv.Atoi(code)
		if err != nil {
			t.Errorf("got response %q, want a status code", code)
			continue
		}
		resp, err := doc.deref(resp)
		if err != nil {
			t.Errorf("response %s: %v", code, err)
			continue
		}
		content, _ := resp["content"].(map[string]any)
		if status < 400 {
			hasSuccess = hasSuccess || status < 300
			for mt, media := range content {
				media, _ := media.(map[string]any)
				if _, ok := media["schema"]; !ok {
					t.Errorf("response %s %s: got no schema, want one", code, mt)
				}
				if _, ok := media["x-sparr-item-schema"]; mt == "application/jsonl" && !ok {
					t.Errorf("response %s %s: got no x-sparr-item-schema, want the schema of its lines", code, mt)
				}
			}
			continue
		}
		pj, _ := content[protocol.ProblemContentType].(map[string]any)
		if schema, _ := pj["schema"].(map[string]any); schema["$ref"] != "#/components/schemas/Problem" || len(content) != 1 {
			t.Errorf("response %s: got content %v, want only %s with the Problem schema", code, content, protocol.ProblemContentType)
		}
	}
	if !hasSuccess {
		t.Errorf("got no 2xx response, want one documented")
	}

	problems, ok := stringList(op["x-sparr-problems"])
	if !ok {
		t.Errorf("got x-sparr-problems %v, want a list of problem slugs", op["x-sparr-problems"])
	}
	for _, slug := range problems {
		p, ok := problemSlugs[slug]
		if !ok {
			t.Errorf("got problem %q in x-sparr-problems, want only problems of the catalogue", slug)
			continue
		}
		if _, ok := responses[strconv.Itoa(p.Status)]; !ok {
			t.Errorf("got no %d response for problem %s, want its status documented", p.Status, slug)
		}
		if !strings.Contains(desc, "`"+slug+"`") {
			t.Errorf("got a description without problem `%s`, want every problem listed", slug)
		}
	}
	if !r.Public() {
		for _, slug := range authProblems {
			if !slices.Contains(problems, slug) {
				t.Errorf("got x-sparr-problems without %s, want it: every authenticated route can answer it", slug)
			}
		}
	}

	// Every path parameter is declared.
	declared := map[string]bool{}
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		if p, err := doc.deref(p); err == nil && p["in"] == "path" {
			declared[p["name"].(string)] = true
		}
	}
	for _, part := range strings.Split(r.Path, "/") {
		if name, ok := strings.CutPrefix(part, ":"); ok && !declared[name] {
			t.Errorf("got no declaration of path parameter %q, want one", name)
		}
	}

	// A route that reads a body documents it, with the media type the
	// handler takes.
	if body, ok := op["requestBody"].(map[string]any); ok {
		content, _ := body["content"].(map[string]any)
		for mt, media := range content {
			media, _ := media.(map[string]any)
			if _, ok := media["schema"]; !ok {
				t.Errorf("got request body %s without a schema, want one", mt)
			}
			if mt == "application/jose" {
				if _, ok := media["x-sparr-jws-payload"]; !ok {
					t.Errorf("got a signed request body without x-sparr-jws-payload, want the payload's schema")
				}
			}
		}
	}
}

// TestOpenAPIReferencesResolve fails for a "$ref" that points nowhere.
func TestOpenAPIReferencesResolve(t *testing.T) {
	doc := openAPI(t)
	all := map[string]string{}
	refs(map[string]any(doc), "", all)
	if len(all) < 50 {
		t.Fatalf("found %d $refs, want the document's many (is the walk broken?)", len(all))
	}
	for at, ref := range all {
		if _, err := doc.resolve(ref); err != nil {
			t.Errorf("%s: %v", at, err)
		}
	}
	// A reference to a missing component must be caught.
	if _, err := doc.resolve("#/components/schemas/NoSuchSchema"); err == nil {
		t.Error("got a missing schema resolved, want an error")
	}
}

// TestOpenAPIFailsFirst checks that the checks above bite: a document
// missing a route, or naming one that does not exist, is caught.
func TestOpenAPIFailsFirst(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(openAPIFile))
	if err != nil {
		t.Fatal(err)
	}
	// Drop "/readyz:" with its operation, and rename the healthz path.
	text := string(b)
	start := strings.Index(text, "\n  /readyz:\n")
	end := strings.Index(text, "\n  /v1/tokens:\n")
	if start < 0 || end < start {
		t.Fatal("got no /readyz in the document, want one to remove")
	}
	text = text[:start] + text[end:]
	text = strings.Replace(text, "\n  /healthz:\n", "\n  /health:\n", 1)
	doc, err := parseOpenAPI([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	ops := doc.operations()
	for _, key := range []string{"GET /readyz", "GET /healthz"} {
		if _, ok := ops[key]; ok {
			t.Errorf("got %s after removing it, want it gone", key)
		}
	}
	if _, ok := ops["GET /health"]; !ok {
		t.Error("got no GET /health after renaming, want it")
	}
	if _, err := parseOpenAPI([]byte("openapi: 3.1.0\npaths:\n  /a: {}\n  /a: {}\n")); err == nil {
		t.Error("got a document with a duplicate path parsed, want an error")
	}
	if _, err := parseOpenAPI([]byte("openapi: [3.1.0\n")); err == nil {
		t.Error("got invalid YAML parsed, want an error")
	}
}

// TestOpenAPISchemasMatchGoTypes holds the component schemas to the Go
// types they describe: the same JSON names, a field required exactly when
// it is always present (no omitempty), request bodies closed to unknown
// fields, and enums equal to the lists the hub uses.
func TestOpenAPISchemasMatchGoTypes(t *testing.T) {
	doc := openAPI(t)
	types := []struct {
		schema  string
		value   any
		request bool
	}{
		{"PoliceReport", protocol.PoliceReport{}, true},
		{"Consent", protocol.Consent{}, true},
		{"ConsentCollection", protocol.ConsentCollection{}, true},
		{"ConsentEvidence", protocol.ConsentEvidence{}, true},
		{"PlaceFlagRequest", protocol.PlaceFlag{}, true},
		{"ExtendFlagRequest", protocol.ExtendFlag{}, true},
		{"ThawFlagRequest", protocol.ThawFlag{}, true},
		{"LiftFlagRequest", protocol.LiftFlag{}, true},
		{"ReportSuspicionRequest", protocol.ReportSuspicion{}, true},
		{"RetractSuspicionRequest", protocol.RetractSuspicion{}, true},
		{"TokenRequest", protocol.TokenRequest{}, true},
		{"TokenResponse", protocol.TokenResponse{}, false},
		{"TokenPublicKey", protocol.TokenPublicKey{}, false},
		{"CheckResponse", api.CheckResponse{}, false},
		{"CheckResult", api.CheckResult{}, false},
		{"CheckFlag", api.CheckFlag{}, false},
		{"CheckSuspicions", api.CheckSuspicions{}, false},
		{"Configuration", api.Configuration{}, false},
		{"LogInfo", api.LogInfo{}, false},
		{"PolicyInfo", api.Policy{}, false},
		{"Member", api.Member{}, false},
		{"FeedEvent", api.FeedEvent{}, false},
		{"FeedPage", api.FeedPage{}, false},
		{"EndpointView", api.Endpoint{}, false},
		{"SecretView", api.EndpointSecret{}, false},
		{"DeadLetterView", api.DeadLetter{}, false},
		{"ProofResponse", api.ProofResponse{}, false},
		{"AuditEntry", api.AuditEntry{}, false},
		{"AuditStats", api.AuditStats{}, false},
		{"Problem", protocol.Problem{}, false},
		{"ProblemField", protocol.ProblemField{}, false},
	}
	for _, tc := range types {
		t.Run(tc.schema, func(t *testing.T) {
			s, err := doc.deref(map[string]any{"$ref": "#/components/schemas/" + tc.schema})
			if err != nil {
				t.Fatal(err)
			}
			props, _ := s["properties"].(map[string]any)
			var names []string
			for n := range props {
				names = append(names, n)
			}
			sort.Strings(names)
			required, _ := stringList(s["required"])
			sort.Strings(required)
			var wantNames, wantRequired []string
			rt := reflect.TypeOf(tc.value)
			for i := range rt.NumField() {
				f := rt.Field(i)
				tag := f.Tag.Get("json")
				name, opts, _ := strings.Cut(tag, ",")
				if !f.IsExported() || name == "-" {
					continue
				}
				if name == "" {
					name = f.Name
				}
				wantNames = append(wantNames, name)
				if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
					wantRequired = append(wantRequired, name)
				}
			}
			sort.Strings(wantNames)
			sort.Strings(wantRequired)
			if !slices.Equal(names, wantNames) {
				t.Errorf("properties %q, want the JSON names of %T: %q", names, tc.value, wantNames)
			}
			if !slices.Equal(required, wantRequired) {
				t.Errorf("required %q, want the fields of %T without omitempty: %q", required, tc.value, wantRequired)
			}
			if tc.request && s["additionalProperties"] != false {
				t.Errorf("additionalProperties %v, want false: the hub refuses unknown fields", s["additionalProperties"])
			}
		})
	}

	enums := []struct {
		schema string
		want   []string
	}{
		{"Purpose", api.Purposes()},
		{"Outcome", api.Outcomes()},
		{"Advice", stringsOf([]api.Advice{api.AdviceVerify, api.AdviceReview, api.AdviceNone})},
		{"SuspicionCategory", stringsOf(protocol.SuspicionCategories())},
		{"IdentifierType", stringsOf(protocol.IdentifierTypes())},
		{"Role", stringsOf(api.Roles())},
		{"EventType", stringsOf(protocol.EventTypes())},
		{"FlagKind", []string{string(protocol.FlagKindStandard), string(protocol.FlagKindExtended)}},
		{"EndpointStatus", stringsOf([]api.EndpointStatus{api.EndpointUnverified, api.EndpointActive, api.EndpointPaused, api.EndpointDisabled})},
		{"RetractReason", stringsOf([]protocol.RetractReason{protocol.RetractReportedInError, protocol.RetractCaseClosed, protocol.RetractOther})},
		{"PlaceReason", stringsOf(protocol.PlaceReasons())},
		{"LiftReason", stringsOf(protocol.LiftReasons())},
	}
	for _, e := range enums {
		s, err := doc.deref(map[string]any{"$ref": "#/components/schemas/" + e.schema})
		if err != nil {
			t.Errorf("%s: %v", e.schema, err)
			continue
		}
		if got, _ := stringList(s["enum"]); !slices.Equal(got, e.want) {
			t.Errorf("%s enum %q, want %q", e.schema, got, e.want)
		}
	}
	problem, _ := doc.deref(map[string]any{"$ref": "#/components/schemas/Problem"})
	typ, _ := problem["properties"].(map[string]any)["type"].(map[string]any)
	var uris []string
	for _, p := range protocol.ProblemTypes() {
		uris = append(uris, p.URI)
	}
	if got, _ := stringList(typ["enum"]); !slices.Equal(got, uris) {
		t.Errorf("Problem type enum %q, want the catalogue %q", got, uris)
	}
}

func stringsOf[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = string(s)
	}
	return out
}

// TestOpenAPITokenPattern checks the Token schema against real tokens: it
// takes every canonical token and refuses near misses.
func TestOpenAPITokenPattern(t *testing.T) {
	doc := openAPI(t)
	s, err := doc.deref(map[string]any{"$ref": "#/components/schemas/Token"})
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(s["pattern"].(string))
	key, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[protocol.IdentifierType][]string{
		protocol.TypePersonalNumber: {"190905271474", "198112189876"},
		protocol.TypeEmail:          {"a@example.se", "kund.namn+tag@bank.example"},
		protocol.TypePhone:          {"+46701234567"},
	}
	var good []string
	for typ, values := range inputs {
		for _, v := range values {
			tok, err := key.Token(typ, v)
			if err != nil {
				t.Fatal(err)
			}
			good = append(good, tok.String())
		}
	}
	for i := range 200 { // the last character varies with the value
		var v [protocol.TokenSize]byte
		v[protocol.TokenSize-1] = byte(i)
		good = append(good, protocol.Token{Type: protocol.TypeEmail, Epoch: 12, Value: v}.String())
	}
	for _, s := range good {
		if !re.MatchString(s) {
			t.Errorf("got pattern %s refusing token %s, want it taken", re, s)
		}
		if _, err := protocol.ParseToken(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	tok := good[0]
	bad := []string{
		"", tok[:len(tok)-1], tok + "A", strings.Replace(tok, ".1.", ".01.", 1), strings.Replace(tok, ".1.", ".0.", 1),
		"ssn" + tok[strings.Index(tok, "."):], tok[:len(tok)-1] + "B", tok + "=",
	}
	for _, s := range bad {
		if re.MatchString(s) {
			t.Errorf("got pattern %s taking %q, want it refused", re, s)
		}
		if _, err := protocol.ParseToken(s); err == nil {
			t.Errorf("got ParseToken taking %q, want it refused as a near miss", s)
		}
	}
	// Every example of a schema with a pattern matches it.
	schemas, _ := doc["components"].(map[string]any)["schemas"].(map[string]any)
	for name, s := range schemas {
		s, _ := s.(map[string]any)
		pat, ok := s["pattern"].(string)
		if !ok {
			continue
		}
		ex, _ := stringList(s["examples"])
		for _, e := range ex {
			if !regexp.MustCompile(pat).MatchString(e) {
				t.Errorf("%s: got example %q, want it to match the pattern %s", name, e, pat)
			}
		}
	}
}

// A schema checker for the subset of JSON Schema the document uses. In
// strict mode an object may hold only the properties its schema names,
// so an answer with an undocumented field fails.
type schemaChecker struct {
	doc    apiDoc
	strict bool
}

func (c schemaChecker) check(schema any, v any, at string) []string {
	s, err := c.doc.deref(schema)
	if err != nil {
		return []string{at + ": " + err.Error()}
	}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, args...)) }
	if want, ok := s["const"]; ok && !reflect.DeepEqual(want, v) {
		fail("%v, want %v", v, want)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		fail("%v is not one of %v", v, enum)
	}
	if alts, ok := s["oneOf"].([]any); ok {
		n := 0
		for _, a := range alts {
			if len(c.check(a, v, at)) == 0 {
				n++
			}
		}
		if n != 1 {
			fail("matches %d of oneOf, want exactly 1", n)
		}
	}
	switch want := s["type"]; want {
	case nil:
	case "object", "array", "string", "integer", "boolean":
		if got := jsonType(v); got != want {
			fail("%s, want %s", got, want)
			return errs
		}
	default:
		fail("schema type %v is not one the checker knows", want)
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := s["properties"].(map[string]any)
		req, _ := stringList(s["required"])
		for _, r := range req {
			if _, ok := v[r]; !ok {
				fail("lacks required %q", r)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if p, ok := props[k]; ok {
				errs = append(errs, c.check(p, v[k], at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case map[string]any:
				errs = append(errs, c.check(ap, v[k], at+"."+k)...)
			case bool:
				if !ap {
					fail("has %q, which the schema does not allow", k)
				}
			default:
				if c.strict && s["type"] == "object" {
					fail("has %q, which the schema does not document", k)
				}
			}
		}
	case []any:
		if n, ok := s["minItems"].(float64); ok && float64(len(v)) < n {
			fail("%d items, want at least %v", len(v), n)
		}
		if n, ok := s["maxItems"].(float64); ok && float64(len(v)) > n {
			fail("%d items, want at most %v", len(v), n)
		}
		if items, ok := s["items"]; ok {
			for i, e := range v {
				errs = append(errs, c.check(items, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case string:
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(v) {
			fail("%q does not match %s", v, p)
		}
		n := float64(utf8.RuneCountInString(v))
		if m, ok := s["minLength"].(float64); ok && n < m {
			fail("%v characters, want at least %v", n, m)
		}
		if m, ok := s["maxLength"].(float64); ok && n > m {
			fail("%v characters, want at most %v", n, m)
		}
		if _, err := time.Parse(time.RFC3339Nano, v); s["format"] == "date-time" && err != nil {
			fail("%q is not an RFC 3339 date-time", v)
		}
		if _, err := time.Parse(time.DateOnly, v); s["format"] == "date" && err != nil {
			fail("%q is not a date", v)
		}
	case float64:
		if m, ok := s["minimum"].(float64); ok && v < m {
			fail("%v, want at least %v", v, m)
		}
	}
	return errs
}

// jsonType names the JSON Schema type of a decoded JSON value.
func jsonType(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		if v == float64(int64(v)) {
			return "integer"
		}
		return "number"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// conforms checks an answer against the document: its status is
// documented for the route, its Content-Type among that response's media
// types, and a JSON body valid, strictly, against the schema; so must be
// each line of a JSON Lines body against its x-sparr-item-schema, and a
// text body, as a string. A problem's type must be one the route lists.
// route is "METHOD /gin/:path".
func conforms(t testing.TB, route string, resp *hubtest.Response) {
	t.Helper()
	doc := openAPI(t)
	method, path, _ := strings.Cut(route, " ")
	key := method + " " + server.Route{Path: path}.OpenAPIPath()
	op, ok := doc.operations()[key]
	if !ok {
		t.Errorf("got no %s in %s, want it documented", key, openAPIFile)
		return
	}
	responses, _ := op["responses"].(map[string]any)
	r, ok := responses[strconv.Itoa(resp.Status)]
	if !ok {
		t.Errorf("%s: got status %d, want one %s documents: %s", key, resp.Status, openAPIFile, resp.Body)
		return
	}
	rm, err := doc.deref(r)
	if err != nil {
		t.Errorf("%s %d: %v", key, resp.Status, err)
		return
	}
	content, _ := rm["content"].(map[string]any)
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	media, ok := content[mt].(map[string]any)
	if !ok {
		t.Errorf("%s %d: got Content-Type %q, want one of %v", key, resp.Status, mt, slices.Sorted(maps.Keys(content)))
		return
	}
	if mt == protocol.ProblemContentType {
		var p protocol.Problem
		if err := json.Unmarshal(resp.Body, &p); err == nil {
			pt, _ := protocol.LookupProblemType(p.Type)
			if listed, _ := stringList(op["x-sparr-problems"]); !slices.Contains(listed, pt.Slug()) {
				t.Errorf("%s: got problem %q, want one of its x-sparr-problems %q", key, p.Type, listed)
			}
		}
	}
	if schema, ok := media["schema"]; ok && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
		var v any
		if err := json.Unmarshal(resp.Body, &v); err != nil {
			t.Errorf("%s %d: got a body that is not JSON (%v), want JSON", key, resp.Status, err)
			return
		}
		for _, e := range (schemaChecker{doc: doc, strict: true}).check(schema, v, "body") {
			t.Errorf("%s %d: got %s, want the documented schema", key, resp.Status, e)
		}
	}
	if schema, ok := media["schema"]; ok && strings.HasPrefix(mt, "text/") {
		for _, e := range (schemaChecker{doc: doc, strict: true}).check(schema, string(resp.Body), "body") {
			t.Errorf("%s %d: got %s, want the documented schema", key, resp.Status, e)
		}
	}
	if item, ok := media["x-sparr-item-schema"]; ok && mt == "application/jsonl" && len(resp.Body) > 0 {
		if !bytes.HasSuffix(resp.Body, []byte("\n")) {
			t.Errorf("%s %d: got JSON Lines without a final newline, want every line ended", key, resp.Status)
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(resp.Body, []byte("\n")), []byte("\n")) {
			var v any
			if err := json.Unmarshal(line, &v); err != nil {
				t.Errorf("%s %d: got line %d that is not JSON (%v), want JSON", key, resp.Status, i+1, err)
				continue
			}
			for _, e := range (schemaChecker{doc: doc, strict: true}).check(item, v, fmt.Sprintf("line %d", i+1)) {
				t.Errorf("%s %d: got %s, want the documented schema", key, resp.Status, e)
			}
		}
	}
}

// TestOpenAPIDescribesAnswers walks a real hub through every route and
// holds each answer to the document, strictly: a status, media type or
// field the document does not describe fails, and so does a request the
// hub accepts but the document's request schema would refuse.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-4-par"}})
	began := hub.Now().UTC().Truncate(time.Second)
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck)
	other := hub.AddMember(t, "bank-b", api.RoleCheck)
	// A checkpoint from before the walk, which the later ones must extend.
	early, err := hub.PublishCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	doc := openAPI(t)

	expect := func(route string, resp *hubtest.Response, want int) *hubtest.Response {
		t.Helper()
		if resp.Status != want {
			t.Fatalf("%s: got status %d, want %d: %s", route, resp.Status, want, resp.Body)
		}
		conforms(t, route, resp)
		return resp
	}
	sent := func(schema string, v any) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := json.Unmarshal(b, &generic); err != nil {
			t.Fatal(err)
		}
		for _, e := range (schemaChecker{doc: doc}).check(map[string]any{"$ref": "#/components/schemas/" + schema}, generic, schema) {
			t.Errorf("got %s for a request the hub accepts, want it to fit the document", e)
		}
	}
	sentJWS := func(schema string, jws []byte) {
		t.Helper()
		parts := bytes.Split(jws, []byte("."))
		for i, s := range []string{"SubmissionHeader", schema} {
			raw, err := base64.RawURLEncoding.DecodeString(string(parts[i]))
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				t.Fatal(err)
			}
			sent(s, v)
		}
	}
	submit := func(m *hubtest.Member, route, path, schema string, req protocol.Request, want int) *hubtest.Response {
		t.Helper()
		jws := m.Sign(t, req)
		sentJWS(schema, jws)
		return expect(route, m.Do(t, http.MethodPost, path, "application/jose", jws), want)
	}

	// Discovery.
	expect("GET /.well-known/sparr-configuration", hub.Anonymous(t, http.MethodGet, "/.well-known/sparr-configuration", "", nil), http.StatusOK)
	expect("GET /.well-known/jwks.json", hub.Anonymous(t, http.MethodGet, "/.well-known/jwks.json", "", nil), http.StatusOK)
	expect("GET /healthz", hub.Anonymous(t, http.MethodGet, "/healthz", "", nil), http.StatusOK)
	expect("GET /readyz", hub.Anonymous(t, http.MethodGet, "/readyz", "", nil), http.StatusOK)

	// Tokens.
	var cfg api.Configuration
	hub.Anonymous(t, http.MethodGet, "/.well-known/sparr-configuration", "", nil).JSON(t, &cfg)
	client, err := protocol.NewTokenClient(cfg.Token)
	if err != nil {
		t.Fatal(err)
	}
	blinding, treq, err := client.Blind(protocol.TypeEmail, "kund@bank-a.example", "annan@bank-a.example")
	if err != nil {
		t.Fatal(err)
	}
	sent("TokenRequest", treq)
	resp := expect("POST /v1/tokens", bank.JSON(t, http.MethodPost, "/v1/tokens", treq), http.StatusOK)
	var tresp protocol.TokenResponse
	resp.JSON(t, &tresp)
	toks, err := client.Finalize(blinding, &tresp)
	if err != nil {
		t.Fatal(err)
	}
	flagged, suspected := toks[0], toks[1]

	// A flag's life.
	resp = submit(bank, "POST /v1/flags", "/v1/flags", "PlaceFlagSubmission",
		protocol.PlaceFlag{Subject: flagged, Kind: protocol.FlagKindStandard, Consent: bank.Consent(flagged)}, http.StatusCreated)
	var placed struct {
		Flag struct {
			FlagID string `json:"flag_id"`
		} `json:"flag"`
	}
	resp.JSON(t, &placed)
	id := placed.Flag.FlagID
	submit(bank, "POST /v1/flags", "/v1/flags", "PlaceFlagSubmission",
		protocol.PlaceFlag{Subject: flagged, Kind: protocol.FlagKindStandard, Consent: bank.Consent(flagged)}, http.StatusOK)
	replay := func(route, path string, jws []byte, want int) {
		t.Helper()
		expect(route, bank.Do(t, http.MethodPost, path, "application/jose", jws), want)
		expect(route, bank.Do(t, http.MethodPost, path, "application/jose", jws), want)
	}
	other2 := toks[0]
	other2.Value[0] ^= 1 // a subject nobody has flagged yet
	replay("POST /v1/flags", "/v1/flags", bank.Sign(t, protocol.PlaceFlag{Subject: other2, Kind: protocol.FlagKindStandard, Consent: bank.Consent(other2)}), http.StatusCreated)
	replay("POST /v1/flags", "/v1/flags", bank.Sign(t, protocol.PlaceFlag{Subject: flagged, Kind: protocol.FlagKindStandard, Consent: bank.Consent(flagged)}), http.StatusOK)
	expect("GET /v1/flags/:id", other.Do(t, http.MethodGet, "/v1/flags/"+id, "", nil), http.StatusOK)
	report := &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "5000-K123456-26", Date: hub.Now().Format(time.DateOnly)}
	submit(bank, "POST /v1/flags/:id/extend", "/v1/flags/"+id+"/extend", "ExtendFlagSubmission",
		protocol.ExtendFlag{FlagID: id, Kind: protocol.FlagKindExtended, PoliceReport: report}, http.StatusOK)
	resp = submit(bank, "POST /v1/flags/:id/thaw", "/v1/flags/"+id+"/thaw", "ThawFlagSubmission",
		protocol.ThawFlag{FlagID: id, ThawUntil: protocol.NewNumericDate(hub.Now().Add(time.Hour))}, http.StatusOK)
	var thawed struct {
		Record string `json:"record"`
	}
	resp.JSON(t, &thawed)
	rec, err := protocol.VerifyRecord([]byte(thawed.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	expect("GET /v1/records/:jti", other.Do(t, http.MethodGet, "/v1/records/"+rec.ID, "", nil), http.StatusOK)

	// A suspicion's life.
	resp = submit(bank, "POST /v1/suspicions", "/v1/suspicions", "ReportSuspicionSubmission",
		protocol.ReportSuspicion{Subjects: []protocol.Token{suspected}, Category: protocol.CategoryMoneyMule, PoliceReport: report}, http.StatusCreated)
	var reported struct {
		Suspicion struct {
			ID string `json:"suspicion_id"`
		} `json:"suspicion"`
	}
	resp.JSON(t, &reported)
	sid := reported.Suspicion.ID
	replay("POST /v1/suspicions", "/v1/suspicions", bank.Sign(t, protocol.ReportSuspicion{Subjects: []protocol.Token{suspected, other2}, Category: protocol.CategoryOther, PoliceReport: report}), http.StatusCreated)

	// Checks.
	creq := map[string]any{"purpose": "credit-application", "tokens": []string{flagged.String(), suspected.String()}}
	sent("CheckRequest", creq)
	resp = expect("POST /v1/check", other.JSON(t, http.MethodPost, "/v1/check", creq), http.StatusOK)
	var checked api.CheckResponse
	resp.JSON(t, &checked)
	if len(checked.Results) != 2 || checked.Results[0].Flag == nil || checked.Results[1].Suspicions == nil {
		t.Fatalf("check answered %+v, want a thawed flag and a suspicion, so every field is exercised", checked.Results)
	}
	oreq := map[string]any{"outcome": "verified"}
	sent("OutcomeRequest", oreq)
	expect("POST /v1/checks/:id/outcome", other.JSON(t, http.MethodPost, "/v1/checks/"+checked.CheckID+"/outcome", oreq), http.StatusOK)
	expect("POST /v1/checks/:id/outcome", other.JSON(t, http.MethodPost, "/v1/checks/"+checked.CheckID+"/outcome", oreq), http.StatusConflict)
	dreq := map[string]any{"purpose": "credit-application", "justification": "applicant for a loan of 250 000 kr, case 77-311"}
	sent("DetailsRequest", dreq)
	expect("POST /v1/suspicions/:id/details", other.JSON(t, http.MethodPost, "/v1/suspicions/"+sid+"/details", dreq), http.StatusOK)
	submit(bank, "POST /v1/suspicions/:id/retract", "/v1/suspicions/"+sid+"/retract", "RetractSuspicionSubmission",
		protocol.RetractSuspicion{SuspicionID: sid, Reason: protocol.RetractCaseClosed}, http.StatusOK)
	submit(bank, "POST /v1/flags/:id/lift", "/v1/flags/"+id+"/lift", "LiftFlagSubmission", protocol.LiftFlag{FlagID: id}, http.StatusOK)
	expect("GET /v1/flags/:id", other.Do(t, http.MethodGet, "/v1/flags/"+id, "", nil), http.StatusOK)

	// The feed, a snapshot, and a webhook endpoint.
	expect("GET /v1/events", bank.Do(t, http.MethodGet, "/v1/events?after=0&limit=2", "", nil), http.StatusOK)
	expect("GET /v1/events", bank.Do(t, http.MethodGet, "/v1/events?limit=0", "", nil), http.StatusBadRequest)
	expect("GET /v1/snapshot", bank.Do(t, http.MethodGet, "/v1/snapshot", "", nil), http.StatusOK)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer receiver.Close()
	ereq := map[string]any{"url": receiver.URL + "/sparr/events", "events": []string{"flag-placed", "urn:sparr:event:flag-lifted"}}
	sent("EndpointRequest", ereq)
	expect("GET /v1/members/self/endpoint", bank.Do(t, http.MethodGet, "/v1/members/self/endpoint", "", nil), http.StatusNotFound)
	expect("PUT /v1/members/self/endpoint", bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", ereq), http.StatusCreated)
	expect("PUT /v1/members/self/endpoint", bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", ereq), http.StatusOK)
	expect("PUT /v1/members/self/endpoint", bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": "https://10.1.2.3/hook"}), http.StatusUnprocessableEntity)
	expect("GET /v1/members/self/endpoint", bank.Do(t, http.MethodGet, "/v1/members/self/endpoint", "", nil), http.StatusOK)
	expect("POST /v1/members/self/endpoint/secret", bank.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil), http.StatusOK)
	expect("POST /v1/members/self/endpoint/resume", bank.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil), http.StatusConflict)
	expect("GET /v1/admin/endpoints", hub.Operator.Do(t, http.MethodGet, "/v1/admin/endpoints", "", nil), http.StatusOK)
	expect("DELETE /v1/members/self/endpoint", bank.Do(t, http.MethodDelete, "/v1/members/self/endpoint", "", nil), http.StatusOK)

	// Refusals are problems the routes list.
	expect("GET /v1/flags/:id", other.Do(t, http.MethodGet, "/v1/flags/no-such-flag", "", nil), http.StatusNotFound)
	expect("POST /v1/check", hub.Anonymous(t, http.MethodPost, "/v1/check", "application/json", []byte(`{}`)), http.StatusUnauthorized)
	expect("POST /v1/check", other.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "curiosity", "tokens": []string{flagged.String()}}), http.StatusUnprocessableEntity)
	expect("POST /v1/flags", other.Submit(t, "/v1/flags", protocol.LiftFlag{FlagID: id}), http.StatusForbidden)

	// Administration.
	op := hub.Operator
	expect("GET /v1/admin/members", op.Do(t, http.MethodGet, "/v1/admin/members", "", nil), http.StatusOK)
	expect("GET /v1/admin/members/:id", op.Do(t, http.MethodGet, "/v1/admin/members/bank-b", "", nil), http.StatusOK)
	expect("GET /v1/admin/members/:id", op.Do(t, http.MethodGet, "/v1/admin/members/bank-z", "", nil), http.StatusNotFound)
	key, err := protocol.GenerateSigningKey(protocol.ES256, nil)
	if err != nil {
		t.Fatal(err)
	}
	mreq := map[string]any{"id": "bank-c", "name": "Bank C AB", "roles": []string{"check"}, "jwks": map[string]any{"keys": []any{key.Public()}}}
	sent("MemberRequest", mreq)
	if resp := expect("POST /v1/admin/members", op.JSON(t, http.MethodPost, "/v1/admin/members", mreq), http.StatusCreated); resp.Header.Get("Location") != "/v1/admin/members/bank-c" {
		t.Errorf("got Location %q, want /v1/admin/members/bank-c", resp.Header.Get("Location"))
	}
	expect("POST /v1/admin/members", op.JSON(t, http.MethodPost, "/v1/admin/members", mreq), http.StatusConflict)
	patch := map[string]any{"name": "Bank C (publ)", "roles": []string{"check", "flag"}}
	sent("MemberPatch", patch)
	expect("PATCH /v1/admin/members/:id", op.JSON(t, http.MethodPatch, "/v1/admin/members/bank-c", patch), http.StatusOK)
	expect("POST /v1/admin/members/:id/suspend", op.Do(t, http.MethodPost, "/v1/admin/members/bank-c/suspend", "", nil), http.StatusOK)
	expect("POST /v1/admin/members/:id/suspend", op.Do(t, http.MethodPost, "/v1/admin/members/bank-c/suspend", "", nil), http.StatusOK)
	expect("POST /v1/admin/members/:id/resume", op.Do(t, http.MethodPost, "/v1/admin/members/bank-c/resume", "", nil), http.StatusOK)
	expect("POST /v1/admin/members/:id/suspend", op.Do(t, http.MethodPost, "/v1/admin/members/operator/suspend", "", nil), http.StatusConflict)
	expect("POST /v1/admin/members/:id/resume", op.Do(t, http.MethodPost, "/v1/admin/members/bank-z/resume", "", nil), http.StatusNotFound)
	expect("GET /v1/admin/backup", op.Do(t, http.MethodGet, "/v1/admin/backup", "", nil), http.StatusOK)

	// The exchange log: any member fetches the signed checkpoint and proves
	// entries against it; the regulator reads the entries themselves.
	regulator := hub.AddMember(t, "finansinspektionen", api.RoleRegulator)
	logKey, err := protocol.NewLogVerifier(cfg.Log.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	first, err := protocol.OpenCheckpoint(early, logKey)
	if err != nil {
		t.Fatal(err)
	}
	checkpoint := func(m *hubtest.Member) *protocol.Checkpoint {
		t.Helper()
		if _, err := hub.PublishCheckpoint(); err != nil {
			t.Fatal(err)
		}
		resp := expect("GET /v1/log/checkpoint", m.Do(t, http.MethodGet, "/v1/log/checkpoint", "", nil), http.StatusOK)
		c, err := protocol.OpenCheckpoint(resp.Body, logKey)
		if err != nil {
			t.Fatalf("GET /v1/log/checkpoint: got %v, want a checkpoint signed by the log key", err)
		}
		if got, want := resp.Header.Get("X-Sparr-Tree-Size"), strconv.FormatUint(c.Size, 10); got != want {
			t.Errorf("got X-Sparr-Tree-Size %q, want the checkpoint's size %s", got, want)
		}
		return c
	}
	proofOf := func(m *hubtest.Member, route, path string) []tlog.Hash {
		t.Helper()
		var p api.ProofResponse
		expect(route, m.Do(t, http.MethodGet, path, "", nil), http.StatusOK).JSON(t, &p)
		hashes := make([]tlog.Hash, len(p.Proof))
		for i, h := range p.Proof {
			b, err := base64.StdEncoding.DecodeString(h)
			if err != nil || len(b) != tlog.HashSize {
				t.Fatalf("%s: got proof hash %q, want %d bytes in base64", route, h, tlog.HashSize)
			}
			copy(hashes[i][:], b)
		}
		return hashes
	}
	cp := checkpoint(bank)
	var lines [][]byte
	for uint64(len(lines)) < cp.Size {
		resp := expect("GET /v1/log/entries", regulator.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/entries?start=%d&end=%d", len(lines), cp.Size), "", nil), http.StatusOK)
		page := bytes.SplitAfter(resp.Body, []byte("\n"))
		page = page[:len(page)-1] // nothing after the last newline
		if n := resp.Header.Get("X-Sparr-Entries"); len(page) == 0 || n != strconv.Itoa(len(page)) {
			t.Fatalf("GET /v1/log/entries: got X-Sparr-Entries %q and %d lines, want as many lines as it says, at least one", n, len(page))
		}
		lines = append(lines, page...)
	}
	var tree protocol.Frontier
	for _, l := range lines {
		tree.Append(l)
	}
	if tree.Root() != cp.Root {
		t.Fatalf("got entries hashing to root %x, want the checkpoint's %x", tree.Root(), cp.Root)
	}
	p := proofOf(other, "GET /v1/log/proof/inclusion", fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", checked.LogIndex, cp.Size))
	if err := tlog.CheckRecord(p, int64(cp.Size), cp.Root, int64(checked.LogIndex), tlog.RecordHash(lines[checked.LogIndex])); err != nil {
		t.Errorf("inclusion proof of the check's entry %d: %v", checked.LogIndex, err)
	}
	p = proofOf(bank, "GET /v1/log/proof/consistency", fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", first.Size, cp.Size))
	if err := tlog.CheckTree(p, int64(cp.Size), cp.Root, int64(first.Size), first.Root); err != nil {
		t.Errorf("consistency proof from %d to %d entries: %v", first.Size, cp.Size, err)
	}
	expect("GET /v1/log/proof/inclusion", other.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/proof/inclusion?index=%d&size=%d", cp.Size, cp.Size), "", nil), http.StatusNotFound)
	expect("GET /v1/log/proof/inclusion", other.Do(t, http.MethodGet, "/v1/log/proof/inclusion?index=0", "", nil), http.StatusBadRequest)
	expect("GET /v1/log/proof/consistency", bank.Do(t, http.MethodGet, fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", cp.Size, cp.Size+1000000), "", nil), http.StatusNotFound)
	expect("GET /v1/log/proof/consistency", bank.Do(t, http.MethodGet, "/v1/log/proof/consistency?old=one&new=2", "", nil), http.StatusBadRequest)
	expect("GET /v1/log/entries", regulator.Do(t, http.MethodGet, "/v1/log/entries?start=5&end=4", "", nil), http.StatusBadRequest)

	// The regulator's audit of one member's entries: pages, counts, and
	// exports that agree with each other.
	audit := url.Values{"member": {other.ID}, "from": {began.Format(time.RFC3339)}, "to": {hub.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	type auditPage struct {
		Entries []api.AuditEntry `json:"entries"`
		Next    *uint64          `json:"next"`
	}
	var audited []api.AuditEntry
	for q := maps.Clone(audit); ; {
		q.Set("limit", "2")
		var page auditPage
		expect("GET /v1/audit/entries", regulator.Do(t, http.MethodGet, "/v1/audit/entries?"+q.Encode(), "", nil), http.StatusOK).JSON(t, &page)
		audited = append(audited, page.Entries...)
		if page.Next == nil {
			break
		}
		q.Set("after", strconv.FormatUint(*page.Next, 10))
	}
	if len(audited) < 3 {
		t.Fatalf("got %d entries of %s, want its checks, outcomes, details request and refusals, over pages", len(audited), other.ID)
	}
	var stats api.AuditStats
	expect("GET /v1/audit/stats", regulator.Do(t, http.MethodGet, "/v1/audit/stats?"+audit.Encode(), "", nil), http.StatusOK).JSON(t, &stats)
	if stats.Total != uint64(len(audited)) || stats.Members[other.ID] != stats.Total || stats.Refused["validation-failed"] == 0 {
		t.Errorf("got stats %+v, want the %d entries of %s, its refused check among them", stats, len(audited), other.ID)
	}
	resp = expect("GET /v1/audit/export", regulator.Do(t, http.MethodGet, "/v1/audit/export?"+audit.Encode(), "", nil), http.StatusOK)
	if n := bytes.Count(resp.Body, []byte("\n")); n != len(audited) {
		t.Errorf("got %d JSON Lines, want the %d entries audited", n, len(audited))
	}
	csvQuery := maps.Clone(audit)
	csvQuery.Set("format", "csv")
	resp = expect("GET /v1/audit/export", regulator.Do(t, http.MethodGet, "/v1/audit/export?"+csvQuery.Encode(), "", nil), http.StatusOK)
	if rows, err := csv.NewReader(bytes.NewReader(resp.Body)).ReadAll(); err != nil || len(rows) != len(audited)+1 {
		t.Errorf("got CSV of %d rows (%v), want a header and the %d entries audited", len(rows), err, len(audited))
	}
	expect("GET /v1/audit/entries", regulator.Do(t, http.MethodGet, "/v1/audit/entries?from=yesterday", "", nil), http.StatusBadRequest)
	expect("GET /v1/audit/entries", regulator.Do(t, http.MethodGet, "/v1/audit/entries?limit=0", "", nil), http.StatusBadRequest)
	expect("GET /v1/audit/stats", regulator.Do(t, http.MethodGet, "/v1/audit/stats?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "", nil), http.StatusBadRequest)
	expect("GET /v1/audit/export", regulator.Do(t, http.MethodGet, "/v1/audit/export?format=xml", "", nil), http.StatusBadRequest)

	// Erasure of a subject with an active flag and suspicion, checked
	// before: the flag ends as erased, and the log keeps its entries,
	// tombstones after them, and still extends the checkpoint before.
	resp = expect("POST /v1/check", other.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "account-opening", "tokens": []string{other2.String()}}), http.StatusOK)
	var beforeErasure api.CheckResponse
	resp.JSON(t, &beforeErasure)
	if beforeErasure.Results[0].Flag == nil || beforeErasure.Results[0].Suspicions == nil {
		t.Fatalf("check answered %+v, want a flag and a suspicion to erase", beforeErasure.Results[0])
	}
	xreq := map[string]any{"subject": other2.String(), "legal_basis": "gdpr-art-17"}
	sent("ErasureRequest", xreq)
	var erasure struct {
		LogIndex         uint64 `json:"log_index"`
		RecordsErased    int    `json:"records_erased"`
		LogEntriesErased int    `json:"log_entries_erased"`
	}
	expect("POST /v1/admin/erasures", op.JSON(t, http.MethodPost, "/v1/admin/erasures", xreq), http.StatusOK).JSON(t, &erasure)
	if erasure.RecordsErased == 0 || erasure.LogEntriesErased == 0 {
		t.Errorf("got %+v, want the subject's records and log details erased", erasure)
	}
	expect("POST /v1/admin/erasures", op.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]any{"subject": other2.String(), "legal_basis": "GDPR Art. 17"}), http.StatusUnprocessableEntity)
	expect("POST /v1/admin/erasures", op.JSON(t, http.MethodPost, "/v1/admin/erasures", map[string]any{"subject": "pnr.1.short", "legal_basis": "gdpr-art-17"}), http.StatusBadRequest)
	expect("POST /v1/admin/erasures", op.Do(t, http.MethodPost, "/v1/admin/erasures", "text/plain", []byte("gdpr-art-17")), http.StatusUnsupportedMediaType)
	var gone struct {
		Flag struct {
			Status string `json:"status"`
		} `json:"flag"`
	}
	expect("GET /v1/flags/:id", other.Do(t, http.MethodGet, "/v1/flags/"+beforeErasure.Results[0].Flag.FlagID, "", nil), http.StatusOK).JSON(t, &gone)
	if gone.Flag.Status != "erased" {
		t.Errorf("got flag status %q after the erasure, want erased", gone.Flag.Status)
	}
	var tombstones auditPage
	expect("GET /v1/audit/entries", regulator.Do(t, http.MethodGet, fmt.Sprintf("/v1/audit/entries?action=%s&after=%d", protocol.LogErased, erasure.LogIndex), "", nil), http.StatusOK).JSON(t, &tombstones)
	if len(tombstones.Entries) == 0 {
		t.Fatalf("got no tombstones after the erasure's entry %d, want one per entry whose details went", erasure.LogIndex)
	}
	for _, e := range tombstones.Entries {
		if e.Member != "hub" || e.Attrs["basis"] != "gdpr-art-17" || e.Attrs["index"] == "" || e.Commitment != "" {
			t.Errorf("got tombstone %+v, want the hub's, naming an entry and the basis, committing to nothing", e)
		}
	}
	after := checkpoint(regulator)
	p = proofOf(regulator, "GET /v1/log/proof/consistency", fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", cp.Size, after.Size))
	if err := tlog.CheckTree(p, int64(after.Size), after.Root, int64(cp.Size), cp.Root); err != nil {
		t.Errorf("consistency proof across the erasure, from %d to %d entries: %v", cp.Size, after.Size, err)
	}
}

// TestSchemaCheckerBites checks the schema checker on answers that break
// the document, so that the conformance test cannot pass by checking
// nothing.
func TestSchemaCheckerBites(t *testing.T) {
	doc := openAPI(t)
	c := schemaChecker{doc: doc, strict: true}
	ref := func(s string) any { return map[string]any{"$ref": "#/components/schemas/" + s} }
	good := map[string]any{"type": protocol.ProblemNotFound.URI, "title": "Not found", "status": float64(404), "request_id": "x"}
	if errs := c.check(ref("Problem"), good, "body"); len(errs) != 0 {
		t.Fatalf("got errors %q for a good problem, want none", errs)
	}
	cases := map[string]struct {
		schema string
		v      any
	}{
		"missing required":   {"Problem", map[string]any{"type": protocol.ProblemNotFound.URI, "title": "x"}},
		"undocumented field": {"Problem", map[string]any{"type": protocol.ProblemNotFound.URI, "title": "x", "status": float64(404), "extra": true}},
		"not in enum":        {"Problem", map[string]any{"type": "urn:other", "title": "x", "status": float64(404)}},
		"wrong type":         {"Problem", map[string]any{"type": protocol.ProblemNotFound.URI, "title": "x", "status": "404"}},
		"bad item":           {"CheckRequest", map[string]any{"purpose": "payment", "tokens": []any{"pnr.1.short"}}},
		"too many items":     {"CheckRequest", map[string]any{"purpose": "payment", "tokens": make([]any, 101)}},
		"closed object":      {"OutcomeRequest", map[string]any{"outcome": "verified", "note": "x"}},
		"both key sources":   {"MemberRequest", map[string]any{"id": "bank-x", "name": "X", "roles": []any{"check"}, "jwks": map[string]any{"keys": []any{}}, "jwks_url": "https://x.example/jwks"}},
		"not a date-time":    {"CheckResponse", map[string]any{"check_id": "c", "checked_at": "yesterday", "results": []any{}, "log_index": float64(1)}},
		"both proof kinds":   {"ProofResponse", map[string]any{"index": float64(0), "old": float64(1), "size": float64(2), "proof": []any{}}},
		"not a hash":         {"ProofResponse", map[string]any{"index": float64(0), "size": float64(2), "proof": []any{"AAAA"}}},
		"unsigned note":      {"SignedCheckpoint", "log.example\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"},
		"not an entry line":  {"LogEntryLines", "sparr-log/1 0 yesterday bank-a check ok -\n"},
	}
	for name, tc := range cases {
		if errs := c.check(ref(tc.schema), tc.v, "body"); len(errs) == 0 {
			t.Errorf("%s: got no error, want one", name)
		}
	}
}
