package server_test

import (
	"bytes"
	"context"
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

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"go.yaml.in/yaml/v4"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

const openAPIFile = "../docs/openapi.yaml"

func init() {
	// openapi3filter decodes a body by its media type before validating it.
	// A JSON Lines export and a compact JWS are text to it: their media
	// schemas are strings, and the lines and the JWS parts are held to the
	// schemas the x-sparr- extensions name.
	openapi3filter.RegisterBodyDecoder("application/jsonl", openapi3filter.FileBodyDecoder)
	openapi3filter.RegisterBodyDecoder("application/jose", openapi3filter.FileBodyDecoder)
}

var loadOpenAPI = sync.OnceValues(readOpenAPI)

// loadStrictOpenAPI is the document with every object schema that leaves
// additionalProperties unsaid closed to undocumented properties, so that an
// answer carrying a field the document does not describe fails.
var loadStrictOpenAPI = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := readOpenAPI()
	if err != nil {
		return nil, err
	}
	closed := false
	err = doc.WalkSchemas(func(_ string, s *openapi3.SchemaRef) error {
		ap := &s.Value.AdditionalProperties
		if s.Value.Type.Is(openapi3.TypeObject) && ap.Has == nil && ap.Schema == nil {
			ap.Has = &closed
		}
		return nil
	})
	return doc, err
})

func readOpenAPI() (*openapi3.T, error) {
	b, err := os.ReadFile(filepath.FromSlash(openAPIFile))
	if err != nil {
		return nil, err
	}
	return parseOpenAPI(b)
}

// parseOpenAPI loads the document with kin-openapi, which resolves every
// $ref and refuses one that points nowhere or outside the document, and
// validates it as OpenAPI.
func parseOpenAPI(b []byte) (*openapi3.T, error) {
	// The loader takes a path written twice, the last one winning; YAML
	// itself refuses a duplicate key.
	if err := yaml.Unmarshal(b, new(any)); err != nil {
		return nil, fmt.Errorf("%s is not valid YAML: %w", openAPIFile, err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", openAPIFile, err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		return nil, fmt.Errorf("%s is not valid OpenAPI: %w", openAPIFile, err)
	}
	return doc, nil
}

func openAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := loadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

func strictOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := loadStrictOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// operations returns "METHOD /path" → operation for every operation of the
// document.
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	out := map[string]*openapi3.Operation{}
	for p, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[method+" "+p] = op
		}
	}
	return out
}

// findRoute returns the document's route for "METHOD /gin/:path".
func findRoute(doc *openapi3.T, route string) (*routers.Route, error) {
	method, path, _ := strings.Cut(route, " ")
	p := server.Route{Path: path}.OpenAPIPath()
	if item := doc.Paths.Value(p); item != nil {
		if op := item.GetOperation(method); op != nil {
			return &routers.Route{Spec: doc, Path: p, PathItem: item, Method: method, Operation: op}, nil
		}
	}
	return nil, fmt.Errorf("got no %s %s in %s, want it documented", method, p, openAPIFile)
}

// extensionSchema returns the component schema that an x-sparr- extension
// names as {$ref: "#/components/schemas/Name"}; the loader resolves
// references only in the fields OpenAPI defines.
func extensionSchema(doc *openapi3.T, v any) (*openapi3.SchemaRef, error) {
	m, _ := v.(map[string]any)
	ref, _ := m["$ref"].(string)
	name, ok := strings.CutPrefix(ref, "#/components/schemas/")
	if s := doc.Components.Schemas[name]; ok && s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("got %v, want a $ref to a schema of %s", v, openAPIFile)
}

// visit validates v against a schema of the document, with the JSON Schema
// 2020-12 semantics of OpenAPI 3.1.
func visit(s *openapi3.SchemaRef, v any, opts ...openapi3.SchemaValidationOption) error {
	return s.Value.VisitJSON(v, append(opts, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors())...)
}

func routeKey(r server.Route) string { return r.Method + " " + r.OpenAPIPath() }

// routeGaps compares the document's operations with the routes a hub
// serves, both as "METHOD /path", and says what either lacks.
func routeGaps(ops map[string]*openapi3.Operation, served map[string]bool) []string {
	var gaps []string
	for key := range served {
		if _, ok := ops[key]; !ok {
			gaps = append(gaps, fmt.Sprintf("got no %s in %s, want every route the hub serves documented", key, openAPIFile))
		}
	}
	for key := range ops {
		if !served[key] {
			gaps = append(gaps, fmt.Sprintf("got %s in %s, want only routes the hub serves", key, openAPIFile))
		}
	}
	sort.Strings(gaps)
	return gaps
}

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
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi is %q, want 3.1.x", doc.OpenAPI)
	}
	ops := operations(doc)
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
	for _, gap := range routeGaps(ops, served) {
		t.Error(gap)
	}
	for key := range served {
		if _, ok := routes[key]; !ok {
			t.Errorf("got %s served but not in server.Routes, want every route there (with its roles and rate class)", key)
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

// checkOperation holds an operation to the route it documents, through the
// fields and x-sparr- extensions that are Spärr's own; kin-openapi has
// already held it to OpenAPI (path parameters declared, references
// resolved, schemas well formed).
func checkOperation(t *testing.T, doc *openapi3.T, r server.Route, op *openapi3.Operation) {
	for k, s := range map[string]string{"summary": op.Summary, "description": op.Description, "operationId": op.OperationID} {
		if strings.TrimSpace(s) == "" {
			t.Errorf("got an empty %s, want text for a bank's integration team", k)
		}
	}
	desc := op.Description

	roles, ok := stringList(op.Extensions["x-sparr-roles"])
	if !ok {
		t.Errorf("got x-sparr-roles %v, want a list of roles", op.Extensions["x-sparr-roles"])
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
	if class, ok := op.Extensions["x-sparr-rate-class"].(string); !ok || class != r.Class {
		t.Errorf("got x-sparr-rate-class %v, want %q", op.Extensions["x-sparr-rate-class"], r.Class)
	}

	bearer := openapi3.SecurityRequirements{{"memberBearer": {}}}
	switch sec := op.Security; {
	case sec == nil:
		t.Errorf("got no security, want it stated (security: [] for a public route)")
	case r.Public() && len(*sec) != 0:
		t.Errorf("got security %v on a public route, want []", *sec)
	case !r.Public() && !reflect.DeepEqual(*sec, bearer):
		t.Errorf("got security %v, want [{memberBearer: []}]", *sec)
	}

	responses := op.Responses.Map()
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
		content := resp.Value.Content
		if status < 400 {
			hasSuccess = hasSuccess || status < 300
			for mt, media := range content {
				if media.Schema == nil {
					t.Errorf("response %s %s: got no schema, want one", code, mt)
				}
				if item, ok := media.Extensions["x-sparr-item-schema"]; ok || mt == "application/jsonl" {
					if _, err := extensionSchema(doc, item); err != nil {
						t.Errorf("response %s %s: x-sparr-item-schema: %v", code, mt, err)
					}
				}
			}
			continue
		}
		pj := content[protocol.ProblemContentType]
		if pj == nil || pj.Schema == nil || pj.Schema.Ref != "#/components/schemas/Problem" || len(content) != 1 {
			t.Errorf("response %s: got content %v, want only %s with the Problem schema", code, slices.Sorted(maps.Keys(content)), protocol.ProblemContentType)
		}
	}
	if !hasSuccess {
		t.Errorf("got no 2xx response, want one documented")
	}

	problems, ok := stringList(op.Extensions["x-sparr-problems"])
	if !ok {
		t.Errorf("got x-sparr-problems %v, want a list of problem slugs", op.Extensions["x-sparr-problems"])
	}
	for _, slug := range problems {
		p, ok := problemSlugs[slug]
		if !ok {
			t.Errorf("got problem %q in x-sparr-problems, want only problems of the catalogue", slug)
			continue
		}
		if op.Responses.Status(p.Status) == nil {
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

	// A route that reads a body documents it, with the media type the
	// handler takes; a signed one names the schemas of its JWS parts.
	if op.RequestBody != nil {
		for mt, media := range op.RequestBody.Value.Content {
			if media.Schema == nil {
				t.Errorf("got request body %s without a schema, want one", mt)
			}
			if mt != "application/jose" {
				continue
			}
			for _, ext := range []string{"x-sparr-jws-header", "x-sparr-jws-payload"} {
				if _, err := extensionSchema(doc, media.Extensions[ext]); err != nil {
					t.Errorf("got a signed request body without %s: %v", ext, err)
				}
			}
		}
	}
}

// answerErrors holds an answer to doc and says what is wrong with it. openapi3filter.ValidateResponse checks that its status is
// documented for the route, its Content-Type among that response's media
// types, its documented headers and its body valid against the schema; each
// line of a JSON Lines body must be valid against its x-sparr-item-schema,
// and a problem's type one the route lists. route is "METHOD /gin/:path".
func answerErrors(doc *openapi3.T, route string, resp *hubtest.Response) []string {
	r, err := findRoute(doc, route)
	if err != nil {
		return []string{err.Error()}
	}
	key := r.Method + " " + r.Path
	var errs []string
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: &http.Request{Method: r.Method, URL: &url.URL{Path: r.Path}, Header: http.Header{}},
			Route:   r,
		},
		Status:  resp.Status,
		Header:  resp.Header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	input.SetBodyBytes(resp.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		return []string{fmt.Sprintf("%s %d: got %v, want the answer the document describes", key, resp.Status, err)}
	}
	documented := r.Operation.Responses.Status(resp.Status)
	if documented == nil {
		documented = r.Operation.Responses.Default()
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	media := documented.Value.Content.Get(mt)
	if media == nil {
		if len(resp.Body) > 0 {
			// ValidateResponse passes any body when the response documents none.
			errs = append(errs, fmt.Sprintf("%s %d: got a %q body, want none", key, resp.Status, mt))
		}
		return errs
	}
	if (mt == "application/json" || strings.HasSuffix(mt, "+json")) && !json.Valid(resp.Body) {
		// openapi3filter decodes the first JSON value and ignores what follows.
		errs = append(errs, fmt.Sprintf("%s %d: got a body that is not one JSON value, want JSON", key, resp.Status))
	}
	if mt == protocol.ProblemContentType {
		var p protocol.Problem
		if err := json.Unmarshal(resp.Body, &p); err == nil {
			pt, _ := protocol.LookupProblemType(p.Type)
			if listed, _ := stringList(r.Operation.Extensions["x-sparr-problems"]); !slices.Contains(listed, pt.Slug()) {
				errs = append(errs, fmt.Sprintf("%s: got problem %q, want one of its x-sparr-problems %q", key, p.Type, listed))
			}
		}
	}
	if item, ok := media.Extensions["x-sparr-item-schema"]; ok && len(resp.Body) > 0 {
		schema, err := extensionSchema(doc, item)
		if err != nil {
			return append(errs, fmt.Sprintf("%s %d: x-sparr-item-schema: %v", key, resp.Status, err))
		}
		if !bytes.HasSuffix(resp.Body, []byte("\n")) {
			errs = append(errs, fmt.Sprintf("%s %d: got JSON Lines without a final newline, want every line ended", key, resp.Status))
		}
		for i, line := range bytes.Split(bytes.TrimSuffix(resp.Body, []byte("\n")), []byte("\n")) {
			var v any
			if err := json.Unmarshal(line, &v); err != nil {
				errs = append(errs, fmt.Sprintf("%s %d: got line %d that is not JSON (%v), want JSON", key, resp.Status, i+1, err))
				continue
			}
			if err := visit(schema, v, openapi3.VisitAsResponse()); err != nil {
				errs = append(errs, fmt.Sprintf("%s %d: line %d: got %v, want the documented schema", key, resp.Status, i+1, err))
			}
		}
	}
	return errs
}

// conforms fails the test for each way the answer breaks the document:
// see [answerErrors].
func conforms(t testing.TB, route string, resp *hubtest.Response) {
	t.Helper()
	for _, e := range answerErrors(strictOpenAPI(t), route, resp) {
		t.Error(e)
	}
}

// requestErrors holds a request body to the document as written, through
// openapi3filter.ValidateRequestBody against the operation's requestBody;
// a signed submission's JWS header and payload are held to the schemas its
// x-sparr-jws-header and x-sparr-jws-payload name. route is
// "METHOD /gin/:path".
func requestErrors(doc *openapi3.T, route, contentType string, body []byte) []string {
	r, err := findRoute(doc, route)
	if err != nil {
		return []string{err.Error()}
	}
	if r.Operation.RequestBody == nil {
		return []string{fmt.Sprintf("%s: got no requestBody, want the body documented", route)}
	}
	req := httptest.NewRequest(r.Method, "/", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	input := &openapi3filter.RequestValidationInput{Request: req, Route: r, Options: &openapi3filter.Options{MultiError: true}}
	if err := openapi3filter.ValidateRequestBody(context.Background(), input, r.Operation.RequestBody.Value); err != nil {
		return []string{fmt.Sprintf("%s: %v", route, err)}
	}
	if contentType != "application/jose" {
		return nil
	}
	var errs []string
	media := r.Operation.RequestBody.Value.Content.Get(contentType)
	parts := bytes.Split(body, []byte("."))
	if len(parts) != 3 {
		return []string{fmt.Sprintf("%s: got a JWS of %d parts, want 3", route, len(parts))}
	}
	for i, ext := range []string{"x-sparr-jws-header", "x-sparr-jws-payload"} {
		schema, err := extensionSchema(doc, media.Extensions[ext])
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %s: %v", route, ext, err))
			continue
		}
		var v any
		raw, err := base64.RawURLEncoding.DecodeString(string(parts[i]))
		if err == nil {
			err = json.Unmarshal(raw, &v)
		}
		if err == nil {
			err = visit(schema, v, openapi3.VisitAsRequest())
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: JWS part %d, %s: %v", route, i+1, ext, err))
		}
	}
	return errs
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
		{"MemberRequest", api.MemberRequest{}, true},
		{"MemberPatch", api.MemberPatch{}, true},
		{"SelfResponse", api.SelfResponse{}, false},
		{"Quotas", api.Quotas{}, true},
		{"ReplicaChecksRequest", api.ReplicaChecksRequest{}, true},
		{"ReplicaCheck", api.ReplicaCheck{}, true},
		{"ReplicaChecksResponse", api.ReplicaChecksResponse{}, false},
		{"Reconciliation", api.Reconciliation{}, false},
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
		{"ConsumerAuth", protocol.ConsumerAuth{}, true},
		{"SubjectHistoryRequest", protocol.SubjectHistory{}, true},
		{"AccessReportRequest", protocol.RequestAccessReport{}, true},
		{"OpenDisputeRequest", protocol.OpenDispute{}, true},
		{"AnswerDisputeRequest", protocol.AnswerDispute{}, true},
		{"AttestErasureRequest", protocol.AttestErasure{}, true},
		{"AccessEntry", protocol.AccessEntry{}, false},
		{"FlagEntry", protocol.FlagEntry{}, false},
		{"SuspicionEntry", protocol.SuspicionEntry{}, false},
		{"DisputeEntry", protocol.DisputeEntry{}, false},
		{"HistoryResponse", api.HistoryResponse{}, false},
		{"AccessReportResponse", api.AccessReportResponse{}, false},
		{"DisputeResponse", api.DisputeResponse{}, false},
		{"AttestResponse", api.AttestResponse{}, false},
		{"Attestation", api.Attestation{}, false},
		{"AttestationStatus", api.AttestationStatus{}, false},
		{"OverdueErasure", api.OverdueErasure{}, false},
		{"OverdueAttestations", api.OverdueAttestations{}, false},
	}
	for _, tc := range types {
		t.Run(tc.schema, func(t *testing.T) {
			s := schema(t, doc, tc.schema)
			names := slices.Sorted(maps.Keys(s.Properties))
			required := slices.Sorted(slices.Values(s.Required))
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
			if ap := s.AdditionalProperties; tc.request && (ap.Has == nil || *ap.Has) {
				t.Errorf("additionalProperties %v, want false: the hub refuses unknown fields", ap)
			}
		})
	}

	enums := []struct {
		schema string
		want   []string
	}{
		{"Purpose", api.Purposes()},
		{"Outcome", api.Outcomes()},
		{"Advice", stringsOf([]api.Advice{api.AdviceVerify, api.AdviceReview, api.AdviceWarn, api.AdviceNone})},
		{"SuspicionCategory", stringsOf(protocol.SuspicionCategories())},
		{"IdentifierType", stringsOf(protocol.IdentifierTypes())},
		{"Role", stringsOf(api.Roles())},
		{"EventType", stringsOf(protocol.EventTypes())},
		{"FlagKind", []string{string(protocol.FlagKindStandard), string(protocol.FlagKindExtended)}},
		{"EndpointStatus", stringsOf([]api.EndpointStatus{api.EndpointUnverified, api.EndpointActive, api.EndpointPaused, api.EndpointDisabled})},
		{"RetractReason", stringsOf([]protocol.RetractReason{protocol.RetractReportedInError, protocol.RetractCaseClosed, protocol.RetractOther})},
		{"PlaceReason", stringsOf(protocol.PlaceReasons())},
		{"LiftReason", stringsOf(protocol.LiftReasons())},
		{"DisputeGrounds", stringsOf(protocol.DisputeGroundsAll())},
		{"DisputeAnswer", stringsOf(protocol.DisputeAnswers())},
	}
	for _, e := range enums {
		if got, _ := stringList(schema(t, doc, e.schema).Enum); !slices.Equal(got, e.want) {
			t.Errorf("%s enum %q, want %q", e.schema, got, e.want)
		}
	}
	// The problem types are listed, but open: a hub of a later version
	// may answer one this document does not know, and a client generated
	// from it must not refuse the answer.
	typ := schema(t, doc, "Problem").Properties["type"].Value
	if len(typ.Enum) > 0 {
		t.Errorf("Problem type is a closed enum %q, want the known types listed in anyOf beside a pattern for later ones", typ.Enum)
	}
	var uris, listed []string
	for _, p := range protocol.ProblemTypes() {
		uris = append(uris, p.URI)
	}
	var open *openapi3.Schema
	for _, alt := range typ.AnyOf {
		switch v := alt.Value; {
		case v.Const != nil:
			c, _ := v.Const.(string)
			listed = append(listed, c)
		case v.Pattern != "":
			open = v
		}
	}
	if !slices.Equal(listed, uris) {
		t.Errorf("Problem type lists %q, want the catalogue %q", listed, uris)
	}
	if open == nil {
		t.Fatalf("Problem type has no pattern for types added later, want one")
	}
	for _, uri := range append(uris, "urn:sparr:problem:added-later") {
		if err := visit(schema(t, doc, "Problem").Properties["type"], uri); err != nil {
			t.Errorf("Problem type %q: got %v, want it accepted", uri, err)
		}
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
	token := doc.Components.Schemas["Token"]
	if token == nil {
		t.Fatalf("got no Token schema in %s, want one", openAPIFile)
	}
	key, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[protocol.IdentifierType][]string{
		protocol.TypePersonalNumber:  {"190905271474", "198112189876"},
		protocol.TypeEmail:           {"a@example.se", "kund.namn+tag@bank.example"},
		protocol.TypePhone:           {"+46701234567"},
		protocol.TypeNorwegianNumber: {"13097248022"},
		protocol.TypeDanishNumber:    {"0707614285"},
		protocol.TypeFinnishNumber:   {"131052-308T"},
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
		if err := visit(token, s); err != nil {
			t.Errorf("got the Token schema refusing token %s (%v), want it taken", s, err)
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
		if visit(token, s) == nil {
			t.Errorf("got the Token schema taking %q, want it refused", s)
		}
		if _, err := protocol.ParseToken(s); err == nil {
			t.Errorf("got ParseToken taking %q, want it refused as a near miss", s)
		}
	}
}

// TestOpenAPIExamples holds every example of a component schema to the
// schema: kin-openapi validates OpenAPI 3.0's example, not the examples of
// an OpenAPI 3.1 schema.
func TestOpenAPIExamples(t *testing.T) {
	doc := openAPI(t)
	n := 0
	for name, s := range doc.Components.Schemas {
		for _, e := range s.Value.Examples {
			n++
			if err := visit(s, e); err != nil {
				t.Errorf("%s: got example %v refused: %v; want every example valid", name, e, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("got no examples, want the document's (is the walk broken?)")
	}
}

// schema returns a component schema of the document.
func schema(t *testing.T, doc *openapi3.T, name string) *openapi3.Schema {
	t.Helper()
	s := doc.Components.Schemas[name]
	if s == nil {
		t.Fatalf("got no schema %s in %s, want one", name, openAPIFile)
	}
	return s.Value
}

// TestOpenAPIDescribesAnswers walks a real hub through every route and
// holds each answer to the document, strictly: a status, media type, header
// or field the document does not describe fails, and so does a request body
// the hub accepts but the operation's documented body would refuse.
func TestOpenAPIDescribesAnswers(t *testing.T) {
	// Erasures are published as soon as the jobs run, not a day later, so
	// that the walk sees their tombstones.
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-4-par", ErasurePeriod: time.Nanosecond}})
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
	sent := func(route, contentType string, body []byte) {
		t.Helper()
		for _, e := range requestErrors(doc, route, contentType, body) {
			t.Errorf("got %s for a request the hub accepts, want it to fit the document", e)
		}
	}
	sentJSON := func(route string, v any) {
		t.Helper()
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		sent(route, "application/json", b)
	}
	submit := func(m *hubtest.Member, route, path string, req protocol.Request, want int) *hubtest.Response {
		t.Helper()
		jws := m.Sign(t, req)
		sent(route, "application/jose", jws)
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
	sentJSON("POST /v1/tokens", treq)
	resp := expect("POST /v1/tokens", bank.JSON(t, http.MethodPost, "/v1/tokens", treq), http.StatusOK)
	var tresp protocol.TokenResponse
	resp.JSON(t, &tresp)
	toks, err := client.Finalize(blinding, &tresp)
	if err != nil {
		t.Fatal(err)
	}
	flagged, suspected := toks[0], toks[1]

	// A flag's life.
	resp = submit(bank, "POST /v1/flags", "/v1/flags",
		protocol.PlaceFlag{Subject: flagged, Kind: protocol.FlagKindStandard, Consent: bank.Consent(flagged)}, http.StatusCreated)
	var placed struct {
		Flag struct {
			FlagID string `json:"flag_id"`
		} `json:"flag"`
	}
	resp.JSON(t, &placed)
	id := placed.Flag.FlagID
	submit(bank, "POST /v1/flags", "/v1/flags",
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
	submit(bank, "POST /v1/flags/:id/extend", "/v1/flags/"+id+"/extend",
		protocol.ExtendFlag{FlagID: id, Kind: protocol.FlagKindExtended, PoliceReport: report}, http.StatusOK)
	resp = submit(bank, "POST /v1/flags/:id/thaw", "/v1/flags/"+id+"/thaw",
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
	resp = submit(bank, "POST /v1/suspicions", "/v1/suspicions",
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
	sentJSON("POST /v1/check", creq)
	resp = expect("POST /v1/check", other.JSON(t, http.MethodPost, "/v1/check", creq), http.StatusOK)
	var checked api.CheckResponse
	resp.JSON(t, &checked)
	if len(checked.Results) != 2 || checked.Results[0].Flag == nil || checked.Results[1].Suspicions == nil {
		t.Fatalf("check answered %+v, want a thawed flag and a suspicion, so every field is exercised", checked.Results)
	}
	oreq := map[string]any{"outcome": "verified"}
	sentJSON("POST /v1/checks/:id/outcome", oreq)
	expect("POST /v1/checks/:id/outcome", other.JSON(t, http.MethodPost, "/v1/checks/"+checked.CheckID+"/outcome", oreq), http.StatusOK)
	expect("POST /v1/checks/:id/outcome", other.JSON(t, http.MethodPost, "/v1/checks/"+checked.CheckID+"/outcome", oreq), http.StatusConflict)
	rreq := map[string]any{"checks": []map[string]any{
		{"token": flagged.String(), "purpose": "payment", "at": hub.Now().Add(-time.Minute).UTC().Format(time.RFC3339Nano)},
		{"token": suspected.String(), "purpose": "account-opening", "at": hub.Now().UTC().Format(time.RFC3339)},
	}}
	sentJSON("POST /v1/checks/replica", rreq)
	expect("POST /v1/checks/replica", other.JSON(t, http.MethodPost, "/v1/checks/replica", rreq), http.StatusOK)
	expect("POST /v1/checks/replica", other.JSON(t, http.MethodPost, "/v1/checks/replica", map[string]any{"checks": []any{}}), http.StatusUnprocessableEntity)
	dreq := map[string]any{"purpose": "credit-application", "justification": "applicant for a loan of 250 000 kr, case 77-311"}
	sentJSON("POST /v1/suspicions/:id/details", dreq)
	expect("POST /v1/suspicions/:id/details", other.JSON(t, http.MethodPost, "/v1/suspicions/"+sid+"/details", dreq), http.StatusOK)
	submit(bank, "POST /v1/suspicions/:id/retract", "/v1/suspicions/"+sid+"/retract",
		protocol.RetractSuspicion{SuspicionID: sid, Reason: protocol.RetractCaseClosed}, http.StatusOK)
	submit(bank, "POST /v1/flags/:id/lift", "/v1/flags/"+id+"/lift", protocol.LiftFlag{FlagID: id}, http.StatusOK)
	expect("GET /v1/flags/:id", other.Do(t, http.MethodGet, "/v1/flags/"+id, "", nil), http.StatusOK)

	// The feed, a snapshot, and a webhook endpoint.
	expect("GET /v1/events", bank.Do(t, http.MethodGet, "/v1/events?after=0&limit=2", "", nil), http.StatusOK)
	var badLimit protocol.Problem
	expect("GET /v1/events", bank.Do(t, http.MethodGet, "/v1/events?limit=0", "", nil), http.StatusBadRequest).JSON(t, &badLimit)
	if len(badLimit.Errors) != 1 || badLimit.Errors[0].Parameter != "limit" || badLimit.Errors[0].Pointer != "" {
		t.Errorf("limit=0: got fields at fault %+v, want the parameter limit", badLimit.Errors)
	}
	expect("GET /v1/snapshot", bank.Do(t, http.MethodGet, "/v1/snapshot", "", nil), http.StatusOK)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer receiver.Close()
	ereq := map[string]any{"url": receiver.URL + "/sparr/events", "events": []string{"flag-placed", "urn:sparr:event:flag-lifted"}}
	sentJSON("PUT /v1/members/self/endpoint", ereq)
	expect("GET /v1/members/self/endpoint", bank.Do(t, http.MethodGet, "/v1/members/self/endpoint", "", nil), http.StatusNotFound)
	expect("GET /v1/members/self", bank.Do(t, http.MethodGet, "/v1/members/self", "", nil), http.StatusOK)
	expect("GET /v1/members/self", hub.Anonymous(t, http.MethodGet, "/v1/members/self", "", nil), http.StatusUnauthorized)
	expect("PUT /v1/members/self/endpoint", bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", ereq), http.StatusCreated)
	expect("PUT /v1/members/self/endpoint", bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", ereq), http.StatusOK)
	expect("PUT /v1/members/self/endpoint", bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": "https://10.1.2.3/hook"}), http.StatusUnprocessableEntity)
	expect("GET /v1/members/self/endpoint", bank.Do(t, http.MethodGet, "/v1/members/self/endpoint", "", nil), http.StatusOK)
	expect("GET /v1/members/self", bank.Do(t, http.MethodGet, "/v1/members/self", "", nil), http.StatusOK)
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
	mreq := map[string]any{"id": "bank-c", "name": "Bank C AB", "roles": []string{"check"}, "jwks": map[string]any{"keys": []any{key.Public()}},
		"quotas": map[string]any{"tokens_per_second": 2.5, "tokens_per_day": 200000}}
	sentJSON("POST /v1/admin/members", mreq)
	if resp := expect("POST /v1/admin/members", op.JSON(t, http.MethodPost, "/v1/admin/members", mreq), http.StatusCreated); resp.Header.Get("Location") != "/v1/admin/members/bank-c" {
		t.Errorf("got Location %q, want /v1/admin/members/bank-c", resp.Header.Get("Location"))
	}
	expect("POST /v1/admin/members", op.JSON(t, http.MethodPost, "/v1/admin/members", mreq), http.StatusConflict)
	patch := map[string]any{"name": "Bank C (publ)", "roles": []string{"check", "flag"}, "quotas": map[string]any{"stored_bytes_per_day": 1 << 30}}
	sentJSON("PATCH /v1/admin/members/:id", patch)
	expect("PATCH /v1/admin/members/:id", op.JSON(t, http.MethodPatch, "/v1/admin/members/bank-c", patch), http.StatusOK)
	defaults := map[string]any{"quotas": map[string]any{}}
	sentJSON("PATCH /v1/admin/members/:id", defaults)
	expect("PATCH /v1/admin/members/:id", op.JSON(t, http.MethodPatch, "/v1/admin/members/bank-c", defaults), http.StatusOK)
	expect("PATCH /v1/admin/members/:id", op.JSON(t, http.MethodPatch, "/v1/admin/members/bank-c", map[string]any{"quotas": map[string]any{"tokens_per_day": -1}}), http.StatusUnprocessableEntity)
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
	// tombstones after them (in the batch the jobs publish once the
	// erasure period has ended), and still extends the checkpoint before.
	resp = expect("POST /v1/check", other.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "account-opening", "tokens": []string{other2.String()}}), http.StatusOK)
	var beforeErasure api.CheckResponse
	resp.JSON(t, &beforeErasure)
	if beforeErasure.Results[0].Flag == nil || beforeErasure.Results[0].Suspicions == nil {
		t.Fatalf("check answered %+v, want a flag and a suspicion to erase", beforeErasure.Results[0])
	}
	xreq := map[string]any{"subject": other2.String(), "legal_basis": "gdpr-art-17"}
	sentJSON("POST /v1/admin/erasures", xreq)
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
	if err := hub.RunJobs(); err != nil {
		t.Fatal(err)
	}
	var tombstones auditPage
	expect("GET /v1/audit/entries", regulator.Do(t, http.MethodGet, fmt.Sprintf("/v1/audit/entries?action=%s&after=%d&limit=1000", protocol.LogErased, erasure.LogIndex), "", nil), http.StatusOK).JSON(t, &tombstones)
	erased := 0
	for _, e := range tombstones.Entries {
		if e.Member != "hub" || e.Attrs["basis"] == "" || e.Attrs["index"] == "" || e.Commitment != "" {
			t.Errorf("got tombstone %+v, want the hub's, naming an entry and the basis, committing to nothing", e)
		}
		if e.Attrs["basis"] == "gdpr-art-17" {
			erased++
		}
	}
	if erased != erasure.LogEntriesErased {
		t.Errorf("got %d gdpr-art-17 tombstones after the erasure's entry %d, want one per entry whose details went (%d)", erased, erasure.LogIndex, erasure.LogEntriesErased)
	}
	after := checkpoint(regulator)
	p = proofOf(regulator, "GET /v1/log/proof/consistency", fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", cp.Size, after.Size))
	if err := tlog.CheckTree(p, int64(after.Size), after.Root, int64(cp.Size), cp.Root); err != nil {
		t.Errorf("consistency proof across the erasure, from %d to %d entries: %v", cp.Size, after.Size, err)
	}
}

// TestOpenAPIListsQuotaRefusals spends a member's daily allowance of
// stored bytes and its daily quota of token evaluations, then sends each
// route it may call a request the hub would otherwise carry out: a route
// whose x-sparr-problems lists storage-quota-exceeded must answer it, and
// one that does not list it must not; POST /v1/tokens answers
// token-quota-exceeded. Every answer is held to the document.
func TestOpenAPIListsQuotaRefusals(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Policy: decide.Policy{SuspicionLegalBasis: "brottsdatalagen-2-kap-4-par",
		PayeeBanks: map[string]string{"SE:500": "bank-a", "SE:120": "bank-h"}}})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleSuspicion, api.RoleCheck)
	holder := hub.AddMember(t, "bank-h", api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "kvot1@example.se", "kvot2@example.se", "kvot3@example.se")
	id := place(t, bank, toks[0]).Flag.FlagID
	// A lift, whose record the member attests, on a token of its own.
	extra := bank.Tokenize(t, protocol.TypeEmail, "kvot6@example.se")[0]
	gone := place(t, bank, extra).Flag.FlagID
	var lifted api.WriteResponse
	resp0 := bank.Submit(t, "/v1/flags/"+gone+"/lift", protocol.LiftFlag{FlagID: gone})
	mustStatus(t, resp0, http.StatusOK)
	resp0.JSON(t, &lifted)
	liftRec, err := protocol.VerifyRecord([]byte(lifted.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	resp := bank.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[1:2], Category: protocol.CategoryOther, PoliceReport: report})
	mustStatus(t, resp, http.StatusCreated)
	var reported struct {
		Suspicion struct {
			ID string `json:"suspicion_id"`
		} `json:"suspicion"`
		Record string `json:"record"`
	}
	resp.JSON(t, &reported)
	rec, err := protocol.VerifyRecord([]byte(reported.Record), hub.JWKS(t))
	if err != nil {
		t.Fatal(err)
	}
	checked := check(t, bank, "payment", toks[0])
	// Another member's check of the flagged token, for bank A to deny.
	othersCheck := check(t, hub.AddMember(t, "bank-q", api.RoleCheck), "credit-application", toks[0])
	payees := bank.Tokenize(t, protocol.TypeIBAN, "SE4550000000058398257466", "SE5412000000012810105723")
	resp = bank.Submit(t, "/v1/payees", payeeReport(payees[0], 2, hub.Now()))
	mustStatus(t, resp, http.StatusCreated)
	var payee struct {
		Payee api.Payee `json:"payee"`
	}
	resp.JSON(t, &payee)
	// A recall from bank-h to bank-a, which bank-a answers under its quota.
	resp = holder.Submit(t, "/v1/recalls", recallRequest(holder.Tokenize(t, protocol.TypeIBAN, "SE4550000000058398257466")[0], "SE:500", hub.Now()))
	mustStatus(t, resp, http.StatusCreated)
	var recalled api.WriteResponse
	resp.JSON(t, &recalled)
	rcID := recalled.Recall.RecallID
	// A consumer of another member's disputes the suspicion.
	disputer := hub.AddMember(t, "bank-d", api.RoleCheck)
	auth := func() *protocol.ConsumerAuth {
		return &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(hub.Now()), Level: protocol.LevelHigh, Reference: "kvot-auth"}
	}
	resp = disputer.Submit(t, "/v1/disputes", protocol.OpenDispute{Subject: toks[1], SuspicionID: reported.Suspicion.ID, Grounds: protocol.GroundsNotMe, ConsumerAuth: auth()})
	mustStatus(t, resp, http.StatusCreated)
	var opened api.DisputeResponse
	resp.JSON(t, &opened)
	did := opened.Dispute.DisputeID
	// An endpoint that is down until it is paused, so that resuming it is
	// a request the hub would carry out.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	defer down.Close()
	mustStatus(t, bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": down.URL + "/sparr/events"}), http.StatusCreated)
	waitEndpoint(t, bank, "paused", func(e api.Endpoint) bool { return e.Status == api.EndpointPaused })

	// A member with no endpoint, to create an SSF stream.
	fresh := hub.AddMember(t, "bank-f", api.RoleCheck)

	// The operator gives the members an allowance of one byte a day, which
	// they have spent, and one token evaluation a day.
	quotas := map[string]any{"quotas": map[string]any{"stored_bytes_per_day": 1, "tokens_per_day": 1}}
	mustStatus(t, hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/bank-a", quotas), http.StatusOK)
	mustStatus(t, hub.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/bank-f", quotas), http.StatusOK)

	tc, err := protocol.NewTokenClient(hub.Configuration().Token)
	if err != nil {
		t.Fatal(err)
	}
	_, treq, err := tc.Blind(protocol.TypeEmail, "kvot4@example.se", "kvot5@example.se")
	if err != nil {
		t.Fatal(err)
	}
	// A home hub of Norwegian numbers, where a peered hub has spent its
	// allowance too.
	home := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.Jurisdiction = "NO" }})
	fnr := home.AddMember(t, "bank-n", api.RoleCheck).Tokenize(t, protocol.TypeNorwegianNumber, "13097248022")
	peer := home.AddMember(t, "hub-se", api.RolePeer)
	// A check the peer relayed, whose outcome it reports under its quota.
	mustStatus(t, peer.JSON(t, http.MethodPost, "/v1/peering/check", api.PeerCheckRequest{CheckRequest: api.CheckRequest{Purpose: "payment", Tokens: []string{fnr[0].String()}},
		Member: "bank-s", CheckID: "kvot-check"}), http.StatusOK)
	mustStatus(t, home.Operator.JSON(t, http.MethodPatch, "/v1/admin/members/hub-se", quotas), http.StatusOK)
	now := hub.Now()
	requests := []struct {
		route string
		do    func() *hubtest.Response
	}{
		{"POST /v1/peering/check", func() *hubtest.Response {
			return peer.JSON(t, http.MethodPost, "/v1/peering/check", api.PeerCheckRequest{CheckRequest: api.CheckRequest{Purpose: "credit-application", Tokens: []string{fnr[0].String()}}, Member: "bank-a"})
		}},
		{"POST /v1/peering/outcome", func() *hubtest.Response {
			return peer.JSON(t, http.MethodPost, "/v1/peering/outcome", api.PeerOutcomeRequest{CheckID: "kvot-check", Member: "bank-s", Outcome: "verified"})
		}},
		{"POST /v1/peering/submissions", func() *hubtest.Response {
			return peer.JSON(t, http.MethodPost, "/v1/peering/submissions", relayedWrite(t, home, peer, "bank-s", fnr[0]))
		}},
		{"POST /v1/flags", func() *hubtest.Response {
			return bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: toks[2], Kind: protocol.FlagKindStandard, Consent: bank.Consent(toks[2])})
		}},
		{"GET /v1/flags/:id", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/flags/"+id, "", nil) }},
		{"POST /v1/flags/:id/extend", func() *hubtest.Response {
			return bank.Submit(t, "/v1/flags/"+id+"/extend", protocol.ExtendFlag{FlagID: id, Kind: protocol.FlagKindExtended, PoliceReport: report})
		}},
		{"POST /v1/flags/:id/thaw", func() *hubtest.Response {
			return bank.Submit(t, "/v1/flags/"+id+"/thaw", protocol.ThawFlag{FlagID: id, ThawUntil: protocol.NewNumericDate(now.Add(time.Hour))})
		}},
		{"POST /v1/flags/:id/lift", func() *hubtest.Response {
			return bank.Submit(t, "/v1/flags/"+id+"/lift", protocol.LiftFlag{FlagID: id})
		}},
		{"POST /v1/suspicions", func() *hubtest.Response {
			return bank.Submit(t, "/v1/suspicions", protocol.ReportSuspicion{Subjects: toks[2:], Category: protocol.CategoryOther, PoliceReport: report})
		}},
		{"POST /v1/suspicions/:id/retract", func() *hubtest.Response {
			return bank.Submit(t, "/v1/suspicions/"+reported.Suspicion.ID+"/retract", protocol.RetractSuspicion{SuspicionID: reported.Suspicion.ID, Reason: protocol.RetractCaseClosed})
		}},
		{"POST /v1/suspicions/:id/details", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPost, "/v1/suspicions/"+reported.Suspicion.ID+"/details", map[string]any{"purpose": "payment", "justification": "the payee of a payment of 90 000 kr"})
		}},
		{"POST /v1/check", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "payment", "tokens": []string{toks[0].String()}})
		}},
		{"POST /v1/payees", func() *hubtest.Response { return bank.Submit(t, "/v1/payees", payeeReport(payees[1], 3, now)) }},
		{"POST /v1/recalls", func() *hubtest.Response {
			return bank.Submit(t, "/v1/recalls", recallRequest(payees[1], "SE:120", now))
		}},
		{"GET /v1/recalls/:id", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/recalls/"+rcID, "", nil) }},
		{"POST /v1/recalls/:id/acknowledge", func() *hubtest.Response {
			return bank.Submit(t, "/v1/recalls/"+rcID+"/acknowledge", protocol.AcknowledgeRecall{RecallID: rcID})
		}},
		{"POST /v1/recalls/:id/outcome", func() *hubtest.Response {
			return bank.Submit(t, "/v1/recalls/"+rcID+"/outcome", protocol.ReportRecallOutcome{RecallID: rcID, Outcome: protocol.RecallGone, Amount: protocol.Money{Currency: "SEK"}})
		}},
		{"GET /v1/payees/:id", func() *hubtest.Response {
			return bank.Do(t, http.MethodGet, "/v1/payees/"+payee.Payee.PayeeID, "", nil)
		}},
		{"POST /v1/payees/:id/contest", func() *hubtest.Response {
			return bank.Submit(t, "/v1/payees/"+payee.Payee.PayeeID+"/contest", protocol.ContestPayee{PayeeID: payee.Payee.PayeeID, Reason: protocol.ContestHolderDisputes})
		}},
		{"POST /v1/checks/:id/outcome", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPost, "/v1/checks/"+checked.CheckID+"/outcome", map[string]any{"outcome": "verified"})
		}},
		{"POST /v1/checks/replica", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPost, "/v1/checks/replica", map[string]any{"checks": []map[string]any{{"token": toks[0].String(), "purpose": "payment", "at": now.UTC().Format(time.RFC3339)}}})
		}},
		{"POST /v1/checks/:id/denial", func() *hubtest.Response {
			return bank.Submit(t, "/v1/checks/"+othersCheck.CheckID+"/denial", protocol.DenyCheck{CheckID: othersCheck.CheckID, FlagID: id,
				ConsumerAuth: &protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(now), Level: protocol.LevelHigh, Reference: "bankid-order-2"}})
		}},
		{"POST /v1/subjects/history", func() *hubtest.Response {
			return bank.Submit(t, "/v1/subjects/history", protocol.SubjectHistory{Subject: toks[0], ConsumerAuth: auth()})
		}},
		{"POST /v1/subjects/report", func() *hubtest.Response {
			return bank.Submit(t, "/v1/subjects/report", protocol.RequestAccessReport{Subject: toks[0], ConsumerAuth: auth()})
		}},
		{"POST /v1/disputes", func() *hubtest.Response {
			return bank.Submit(t, "/v1/disputes", protocol.OpenDispute{Subject: toks[0], FlagID: id, Grounds: protocol.GroundsNeverAsked, ConsumerAuth: auth()})
		}},
		{"GET /v1/disputes/:id", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/disputes/"+did, "", nil) }},
		{"POST /v1/disputes/:id/answer", func() *hubtest.Response {
			return bank.Submit(t, "/v1/disputes/"+did+"/answer", protocol.AnswerDispute{DisputeID: did, Answer: protocol.AnswerAcknowledge})
		}},
		{"POST /v1/erasure-attestations", func() *hubtest.Response {
			return bank.Submit(t, "/v1/erasure-attestations", protocol.AttestErasure{Records: []string{liftRec.ID}})
		}},
		{"GET /v1/erasure-attestations/:jti", func() *hubtest.Response {
			return bank.Do(t, http.MethodGet, "/v1/erasure-attestations/"+liftRec.ID, "", nil)
		}},
		{"GET /v1/records/:jti", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/records/"+rec.ID, "", nil) }},
		{"GET /v1/events", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/events?after=0", "", nil) }},
		{"GET /v1/snapshot", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/snapshot", "", nil) }},
		{"PUT /v1/members/self/endpoint", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPut, "/v1/members/self/endpoint", map[string]any{"url": down.URL + "/sparr/other"})
		}},
		{"GET /v1/members/self/endpoint", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/members/self/endpoint", "", nil) }},
		{"GET /v1/members/self", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/members/self", "", nil) }},
		{"POST /v1/members/self/endpoint/secret", func() *hubtest.Response {
			return bank.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil)
		}},
		{"POST /v1/members/self/endpoint/resume", func() *hubtest.Response {
			return bank.Do(t, http.MethodPost, "/v1/members/self/endpoint/resume", "", nil)
		}},
		{"DELETE /v1/members/self/endpoint", func() *hubtest.Response {
			return bank.Do(t, http.MethodDelete, "/v1/members/self/endpoint", "", nil)
		}},
		{"POST /v1/ssf/stream", func() *hubtest.Response {
			return fresh.JSON(t, http.MethodPost, "/v1/ssf/stream", map[string]any{"delivery": map[string]any{"method": "urn:ietf:rfc:8936"}})
		}},
		{"PATCH /v1/ssf/stream", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPatch, "/v1/ssf/stream", map[string]any{"stream_id": "bank-a", "description": "kvot"})
		}},
		{"PUT /v1/ssf/stream", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPut, "/v1/ssf/stream", map[string]any{"stream_id": "bank-a"})
		}},
		{"POST /v1/ssf/status", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPost, "/v1/ssf/status", map[string]any{"stream_id": "bank-a", "status": "enabled"})
		}},
		{"POST /v1/ssf/verify", func() *hubtest.Response {
			return bank.JSON(t, http.MethodPost, "/v1/ssf/verify", map[string]any{"stream_id": "bank-a", "state": "kvot"})
		}},
		{"DELETE /v1/ssf/stream", func() *hubtest.Response {
			return bank.Do(t, http.MethodDelete, "/v1/ssf/stream?stream_id=bank-a", "", nil)
		}},
		{"GET /v1/log/checkpoint", func() *hubtest.Response { return bank.Do(t, http.MethodGet, "/v1/log/checkpoint", "", nil) }},
		{"POST /v1/tokens", func() *hubtest.Response { return bank.JSON(t, http.MethodPost, "/v1/tokens", treq) }},
	}
	doc := openAPI(t)
	sent := map[string]bool{}
	for _, rq := range requests {
		t.Run(rq.route, func(t *testing.T) {
			sent[rq.route] = true
			r, err := findRoute(doc, rq.route)
			if err != nil {
				t.Fatal(err)
			}
			listed, _ := stringList(r.Operation.Extensions["x-sparr-problems"])
			resp := rq.do()
			conforms(t, rq.route, resp)
			var p protocol.Problem
			if resp.Status >= 400 {
				p = *resp.Problem(t)
			}
			switch {
			case rq.route == "POST /v1/tokens":
				wantProblem(t, resp, protocol.ProblemTokenQuota)
			case slices.Contains(listed, protocol.ProblemStorageQuota.Slug()):
				wantProblem(t, resp, protocol.ProblemStorageQuota)
			case p.Type == protocol.ProblemStorageQuota.URI:
				t.Errorf("got %s, which the route does not list: %s", p.Type, p.Detail)
			case resp.Status >= 300:
				t.Errorf("got status %d, want the route to answer as without the quota: %s", resp.Status, resp.Body)
			}
			if resp.Status == http.StatusTooManyRequests {
				if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 || secs > 24*60*60 {
					t.Errorf("got Retry-After %q, want the seconds to midnight UTC", resp.Header.Get("Retry-After"))
				}
			}
		})
	}
	// Every route that lists the problem was sent a request.
	for key, op := range operations(doc) {
		listed, _ := stringList(op.Extensions["x-sparr-problems"])
		method, path, _ := strings.Cut(key, " ")
		for _, r := range server.Routes() {
			if r.Method == method && r.OpenAPIPath() == path && slices.Contains(listed, protocol.ProblemStorageQuota.Slug()) && !sent[r.Method+" "+r.Path] {
				t.Errorf("got no request for %s, which lists %s", key, protocol.ProblemStorageQuota.Slug())
			}
		}
	}
}

// TestOpenAPIDocumentChecksBite checks that loading the document fails when
// it breaks: a $ref that points nowhere or outside it, a schema that is not
// one, an undeclared path parameter, a path written twice, bad YAML.
func TestOpenAPIDocumentChecksBite(t *testing.T) {
	b, err := os.ReadFile(filepath.FromSlash(openAPIFile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if _, err := parseOpenAPI(b); err != nil {
		t.Fatalf("got %v for the document as it is, want it loaded", err)
	}
	cases := []struct{ name, old, new string }{
		{"schema $ref to nowhere", `$ref: "#/components/schemas/Hash"`, `$ref: "#/components/schemas/NoSuchSchema"`},
		{"response $ref to nowhere", `$ref: "#/components/responses/BadRequest"`, `$ref: "#/components/responses/NoSuchResponse"`},
		{"$ref outside the document", `$ref: "#/components/schemas/Hash"`, `$ref: "schemas.yaml#/Hash"`},
		{"unknown type", "      type: object\n", "      type: record\n"},
		{"undeclared path parameter", "\n  /v1/flags/{id}:\n", "\n  /v1/flags/{flag}:\n"},
		{"path written twice", "\n  /healthz:\n", "\n  /readyz:\n"},
		{"not YAML", "\ninfo:\n", "\ninfo: [\n"},
	}
	for _, tc := range cases {
		if !strings.Contains(text, tc.old) {
			t.Fatalf("%s: got no %q in the document, want one to change", tc.name, tc.old)
		}
		if _, err := parseOpenAPI([]byte(strings.Replace(text, tc.old, tc.new, 1))); err == nil {
			t.Errorf("%s: got the document loaded, want an error", tc.name)
		}
	}
	// References in x-sparr- extensions are ours to resolve.
	doc := openAPI(t)
	if _, err := extensionSchema(doc, map[string]any{"$ref": "#/components/schemas/AuditEntry"}); err != nil {
		t.Errorf("got %v for AuditEntry, want the schema", err)
	}
	for _, v := range []any{nil, map[string]any{"$ref": "#/components/schemas/NoSuchSchema"}, map[string]any{"$ref": "#/components/responses/BadRequest"}} {
		if _, err := extensionSchema(doc, v); err == nil {
			t.Errorf("got a schema for %v, want an error", v)
		}
	}
}

// TestOpenAPIRouteGapsBite checks that a document missing a route the hub
// serves, or naming one it does not, is caught.
func TestOpenAPIRouteGapsBite(t *testing.T) {
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
	served := map[string]bool{}
	for _, r := range hubtest.Start(t, hubtest.Options{}).EngineRoutes() {
		served[routeKey(r)] = true
	}
	if gaps := routeGaps(operations(openAPI(t)), served); len(gaps) != 0 {
		t.Fatalf("got gaps %q for the document as it is, want none", gaps)
	}
	gaps := routeGaps(operations(doc), served)
	for _, key := range []string{"GET /health ", "GET /healthz ", "GET /readyz "} {
		if !slices.ContainsFunc(gaps, func(g string) bool { return strings.Contains(g, key) }) {
			t.Errorf("got gaps %q, want one for %s", gaps, key)
		}
	}
	if len(gaps) != 3 {
		t.Errorf("got %d gaps %q, want 3", len(gaps), gaps)
	}
}

// TestOpenAPIConformanceBites checks that the conformance checks refuse
// real answers of a real hub, and requests, once they are changed to break
// the document, so that TestOpenAPIDescribesAnswers cannot pass by checking
// nothing.
func TestOpenAPIConformanceBites(t *testing.T) {
	doc := strictOpenAPI(t)
	hub := hubtest.Start(t, hubtest.Options{})
	regulator := hub.AddMember(t, "finansinspektionen", api.RoleRegulator)
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	// edit returns a copy of resp changed by fn.
	edit := func(resp *hubtest.Response, fn func(r *hubtest.Response)) *hubtest.Response {
		r := &hubtest.Response{Status: resp.Status, Header: resp.Header.Clone(), Body: bytes.Clone(resp.Body)}
		fn(r)
		return r
	}
	// inJSON changes the JSON object of a body.
	inJSON := func(fn func(body map[string]any)) func(r *hubtest.Response) {
		return func(r *hubtest.Response) {
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			fn(body)
			var err error
			if r.Body, err = json.Marshal(body); err != nil {
				t.Fatal(err)
			}
		}
	}
	answers := []struct {
		route string
		resp  *hubtest.Response
		bad   map[string]func(r *hubtest.Response)
	}{{
		"GET /.well-known/sparr-configuration",
		hub.Anonymous(t, http.MethodGet, "/.well-known/sparr-configuration", "", nil),
		map[string]func(r *hubtest.Response){
			"missing required":         inJSON(func(b map[string]any) { delete(b, "issuer") }),
			"wrong type":               inJSON(func(b map[string]any) { b["token"].(map[string]any)["epoch"] = "1" }),
			"not in enum":              inJSON(func(b map[string]any) { b["signing_algorithms"] = []any{"RS256"} }),
			"undocumented field":       inJSON(func(b map[string]any) { b["extra"] = true }),
			"undocumented inner field": inJSON(func(b map[string]any) { b["log"].(map[string]any)["extra"] = true }),
			"undocumented status":      func(r *hubtest.Response) { r.Status = http.StatusTeapot },
			"undocumented media type":  func(r *hubtest.Response) { r.Header.Set("Content-Type", "text/html") },
			"not JSON":                 func(r *hubtest.Response) { r.Body = r.Body[:len(r.Body)-1] },
			"JSON and more":            func(r *hubtest.Response) { r.Body = append(r.Body, '}') },
		},
	}, {
		"GET /v1/flags/:id",
		regulator.Do(t, http.MethodGet, "/v1/flags/no-such-flag", "", nil),
		map[string]func(r *hubtest.Response){
			"problem not in the catalogue":  inJSON(func(b map[string]any) { b["type"] = "urn:other" }),
			"problem the route cannot give": inJSON(func(b map[string]any) { b["type"] = protocol.ProblemInvalidConsent.URI }),
			"status as a string":            inJSON(func(b map[string]any) { b["status"] = fmt.Sprint(b["status"]) }),
			"undocumented problem field":    inJSON(func(b map[string]any) { b["extra"] = true }),
		},
	}, {
		"GET /v1/log/checkpoint",
		regulator.Do(t, http.MethodGet, "/v1/log/checkpoint", "", nil),
		map[string]func(r *hubtest.Response){
			"header not an integer": func(r *hubtest.Response) { r.Header.Set("X-Sparr-Tree-Size", "many") },
			"unsigned note": func(r *hubtest.Response) {
				r.Body = r.Body[:bytes.Index(r.Body, []byte("\n\n"))+2]
			},
		},
	}, {
		"GET /v1/audit/export",
		regulator.Do(t, http.MethodGet, "/v1/audit/export", "", nil),
		map[string]func(r *hubtest.Response){
			"line not ended": func(r *hubtest.Response) { r.Body = bytes.TrimSuffix(r.Body, []byte("\n")) },
			"line not JSON":  func(r *hubtest.Response) { r.Body = append(r.Body, "{\n"...) },
			"line missing member": func(r *hubtest.Response) {
				r.Body = bytes.Replace(r.Body, []byte(`"member":`), []byte(`"membre":`), 1)
			},
		},
	}}
	for _, a := range answers {
		if errs := answerErrors(doc, a.route, a.resp); len(errs) != 0 {
			t.Fatalf("%s: got %q for a real answer, want none", a.route, errs)
		}
		for name, fn := range a.bad {
			if errs := answerErrors(doc, a.route, edit(a.resp, fn)); len(errs) == 0 {
				t.Errorf("%s, %s: got no error, want one", a.route, name)
			}
		}
	}
	if errs := answerErrors(doc, "GET /v1/nowhere", answers[0].resp); len(errs) == 0 {
		t.Error("got no error for an answer of an undocumented route, want one")
	}

	// Requests, held to the document as written: a good one passes, the
	// same one broken fails.
	encode := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	token := protocol.Token{Type: protocol.TypeEmail, Epoch: 1}.String()
	member := map[string]any{"id": "bank-x", "name": "X", "roles": []any{"check"}, "jwks_url": "https://x.example/jwks"}
	twoKeySources := maps.Clone(member)
	twoKeySources["jwks"] = map[string]any{"keys": []any{}}
	requests := []struct {
		name, route string
		good, bad   any
	}{
		{"closed object", "POST /v1/checks/:id/outcome", map[string]any{"outcome": "verified"}, map[string]any{"outcome": "verified", "note": "x"}},
		{"too many items", "POST /v1/check", map[string]any{"purpose": "payment", "tokens": []string{token}}, map[string]any{"purpose": "payment", "tokens": slices.Repeat([]string{token}, 101)}},
		{"both key sources", "POST /v1/admin/members", member, twoKeySources},
	}
	for _, tc := range requests {
		if errs := requestErrors(openAPI(t), tc.route, "application/json", encode(tc.good)); len(errs) != 0 {
			t.Errorf("%s: got %q for a good request, want none", tc.name, errs)
		}
		if errs := requestErrors(openAPI(t), tc.route, "application/json", encode(tc.bad)); len(errs) == 0 {
			t.Errorf("%s: got no error, want one", tc.name)
		}
	}
	if errs := requestErrors(openAPI(t), "POST /v1/check", "text/plain", encode(requests[1].good)); len(errs) == 0 {
		t.Error("got no error for a body of an undocumented media type, want one")
	}
}

// TestOpenAPISchemasBite checks the component schemas, through the library,
// on values that break them.
func TestOpenAPISchemasBite(t *testing.T) {
	doc := strictOpenAPI(t)
	good := map[string]any{"type": protocol.ProblemNotFound.URI, "title": "Not found", "status": float64(404), "request_id": "x"}
	if err := visit(doc.Components.Schemas["Problem"], good); err != nil {
		t.Fatalf("got %v for a good problem, want none", err)
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
		"not a date-time":    {"CheckResponse", map[string]any{"check_id": "c", "checked_at": "yesterday", "results": []any{}, "log_index": float64(1)}},
		"both proof kinds":   {"ProofResponse", map[string]any{"index": float64(0), "old": float64(1), "size": float64(2), "proof": []any{}}},
		"not a hash":         {"ProofResponse", map[string]any{"index": float64(0), "size": float64(2), "proof": []any{"AAAA"}}},
		"unsigned note":      {"SignedCheckpoint", "log.example\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"},
		"not an entry line":  {"LogEntryLines", "sparr-log/1 0 yesterday bank-a check ok -\n"},
	}
	for name, tc := range cases {
		s := doc.Components.Schemas[tc.schema]
		if s == nil {
			t.Fatalf("%s: got no schema %s, want one", name, tc.schema)
		}
		if err := visit(s, tc.v); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
}

// TestOpenAPIWrongMethod asks every documented path with a method it does
// not take: the hub answers 405 method-not-allowed, as the operations'
// MethodNotAllowed response says, with Allow listing the path's documented
// methods.
func TestOpenAPIWrongMethod(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	doc := strictOpenAPI(t)
	resp405 := doc.Components.Responses["MethodNotAllowed"]
	if resp405 == nil {
		t.Fatal("got no components.responses.MethodNotAllowed, want the 405 answer described")
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	for path, item := range doc.Paths.Map() {
		var methods []string
		for m, op := range item.Operations() {
			methods = append(methods, m)
			if r := op.Responses.Status(http.StatusMethodNotAllowed); r == nil || r.Ref != "#/components/responses/MethodNotAllowed" {
				t.Errorf("%s %s: got 405 %v, want the MethodNotAllowed response", m, path, r)
			}
		}
		sort.Strings(methods)
		var wrong string
		// A path that takes all five gets an OPTIONS.
		for _, m := range []string{http.MethodDelete, http.MethodPatch, http.MethodPut, http.MethodPost, http.MethodGet, http.MethodOptions} {
			if !slices.Contains(methods, m) {
				wrong = m
				break
			}
		}
		t.Run(wrong+" "+path, func(t *testing.T) {
			resp := hub.Anonymous(t, wrong, param.ReplaceAllString(path, "x"), "", nil)
			if resp.Status != http.StatusMethodNotAllowed {
				t.Fatalf("got status %d, want 405: %s", resp.Status, resp.Body)
			}
			var p protocol.Problem
			if err := json.Unmarshal(resp.Body, &p); err != nil || p.Type != protocol.ProblemMethodNotAllowed.URI {
				t.Errorf("got %s (%v), want a %s problem", resp.Body, err, protocol.ProblemMethodNotAllowed.Slug())
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, protocol.ProblemContentType) {
				t.Errorf("got Content-Type %q, want %s", ct, protocol.ProblemContentType)
			}
			var allow []string
			for m := range strings.SplitSeq(resp.Header.Get("Allow"), ",") {
				allow = append(allow, strings.TrimSpace(m))
			}
			sort.Strings(allow)
			if !slices.Equal(allow, methods) {
				t.Errorf("got Allow %q, want the documented methods %q", resp.Header.Get("Allow"), methods)
			}
			for name, h := range resp405.Value.Headers {
				v := resp.Header.Get(name)
				if v == "" {
					t.Errorf("got no %s header, want it as documented", name)
					continue
				}
				if err := h.Value.Schema.Value.VisitJSON(v); err != nil {
					t.Errorf("header %s: got %v, want the documented schema", name, err)
				}
			}
			var body any
			json.Unmarshal(resp.Body, &body)
			if err := visit(resp405.Value.Content.Get(protocol.ProblemContentType).Schema, body, openapi3.VisitAsResponse()); err != nil {
				t.Errorf("got %v, want the documented Problem", err)
			}
		})
	}
}
