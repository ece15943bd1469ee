package server

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A rateClass groups routes under one per-member rate limit.
type rateClass string

const (
	classNone   rateClass = ""
	classReads  rateClass = "reads"
	classWrites rateClass = "writes"
	classChecks rateClass = "checks"
	classTokens rateClass = "tokens"
)

// A Route is one endpoint of the API: its method and path (gin syntax,
// ":id" for a parameter), the roles that may call it (none: anyone), and its
// rate class.
type Route struct {
	Method string
	Path   string
	Roles  []api.Role
	Class  string
	// Action names the route in the exchange log; a route with an action
	// logs the requests it refuses for bad input.
	Action protocol.LogAction

	handle func(*Hub, *gin.Context)
}

// Public reports whether the route needs no bearer token.
func (r Route) Public() bool { return len(r.Roles) == 0 }

var (
	anyone    []api.Role
	flagRole  = []api.Role{api.RoleFlag}
	suspRole  = []api.Role{api.RoleSuspicion}
	checkRole = []api.Role{api.RoleCheck}
	operator  = []api.Role{api.RoleOperator}
	tokenizer = []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck}
	recordsOf = []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck}
	logReader = []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck, api.RoleRegulator, api.RoleOperator}
	regulator = []api.Role{api.RoleRegulator}
	// payeeRole is every member role of a payment service provider: each
	// must share and screen payees (PSR Art. 83).
	payeeRole = []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck}
	peerRole  = []api.Role{api.RolePeer}
	// subscriber is every role that receives records: members, and peered
	// hubs, which get the records of this hub's identifiers that their
	// policy lets flow.
	subscriber = []api.Role{api.RoleFlag, api.RoleSuspicion, api.RoleCheck, api.RolePeer}
	// anyMember is every role: a route any active member may call.
	anyMember = api.Roles()
)

// Routes returns every route of the API, in the order docs/openapi.yaml
// lists them.
func Routes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/.well-known/sparr-configuration", Roles: anyone, handle: (*Hub).configuration},
		{Method: http.MethodGet, Path: "/.well-known/jwks.json", Roles: anyone, handle: (*Hub).jwks},
		{Method: http.MethodGet, Path: "/.well-known/ssf-configuration", Roles: anyone, handle: (*Hub).ssfConfiguration},
		{Method: http.MethodGet, Path: "/healthz", Roles: anyone, handle: (*Hub).healthz},
		{Method: http.MethodGet, Path: "/readyz", Roles: anyone, handle: (*Hub).readyz},

		{Method: http.MethodPost, Path: "/v1/tokens", Roles: tokenizer, Class: string(classTokens), Action: protocol.LogTokens, handle: (*Hub).tokens},
		{Method: http.MethodPost, Path: "/v1/peering/check", Roles: peerRole, Class: string(classChecks), Action: protocol.LogPeerCheck, handle: (*Hub).peerCheck},
		{Method: http.MethodPost, Path: "/v1/peering/tokens", Roles: peerRole, Class: string(classTokens), Action: protocol.LogPeerTokens, handle: (*Hub).peerTokens},
		{Method: http.MethodPost, Path: "/v1/peering/submissions", Roles: peerRole, Class: string(classWrites), Action: protocol.LogPeerSubmission, handle: (*Hub).peerSubmission},
		{Method: http.MethodPost, Path: "/v1/peering/events", Roles: anyone, Action: protocol.LogPeerEvent, handle: (*Hub).peerEvent},
		{Method: http.MethodPost, Path: "/v1/peering/outcome", Roles: peerRole, Class: string(classWrites), Action: protocol.LogCheckOutcome, handle: (*Hub).peerOutcome},

		{Method: http.MethodPost, Path: "/v1/flags", Roles: flagRole, Class: string(classWrites), Action: protocol.LogFlagPlace, handle: (*Hub).placeFlag},
		{Method: http.MethodGet, Path: "/v1/flags/:id", Roles: []api.Role{api.RoleFlag, api.RoleCheck}, Class: string(classReads), handle: (*Hub).getFlag},
		{Method: http.MethodPost, Path: "/v1/flags/:id/extend", Roles: flagRole, Class: string(classWrites), Action: protocol.LogFlagExtend, handle: (*Hub).extendFlag},
		{Method: http.MethodPost, Path: "/v1/flags/:id/thaw", Roles: flagRole, Class: string(classWrites), Action: protocol.LogFlagThaw, handle: (*Hub).thawFlag},
		{Method: http.MethodPost, Path: "/v1/flags/:id/lift", Roles: flagRole, Class: string(classWrites), Action: protocol.LogFlagLift, handle: (*Hub).liftFlag},

		{Method: http.MethodPost, Path: "/v1/suspicions", Roles: suspRole, Class: string(classWrites), Action: protocol.LogSuspicionReport, handle: (*Hub).reportSuspicion},
		{Method: http.MethodPost, Path: "/v1/suspicions/:id/retract", Roles: suspRole, Class: string(classWrites), Action: protocol.LogSuspicionRetract, handle: (*Hub).retractSuspicion},
		{Method: http.MethodPost, Path: "/v1/suspicions/:id/details", Roles: checkRole, Class: string(classChecks), Action: protocol.LogSuspicionDetails, handle: (*Hub).suspicionDetails},

		{Method: http.MethodPost, Path: "/v1/payees", Roles: payeeRole, Class: string(classWrites), Action: protocol.LogPayeeReport, handle: (*Hub).reportPayee},
		{Method: http.MethodGet, Path: "/v1/payees/:id", Roles: payeeRole, Class: string(classReads), handle: (*Hub).getPayee},
		{Method: http.MethodPost, Path: "/v1/payees/:id/contest", Roles: payeeRole, Class: string(classWrites), Action: protocol.LogPayeeContest, handle: (*Hub).contestPayee},

		{Method: http.MethodPost, Path: "/v1/recalls", Roles: payeeRole, Class: string(classWrites), Action: protocol.LogRecallRequest, handle: (*Hub).requestRecall},
		{Method: http.MethodGet, Path: "/v1/recalls/:id", Roles: payeeRole, Class: string(classReads), handle: (*Hub).getRecall},
		{Method: http.MethodPost, Path: "/v1/recalls/:id/acknowledge", Roles: payeeRole, Class: string(classWrites), Action: protocol.LogRecallAcknowledge, handle: (*Hub).acknowledgeRecall},
		{Method: http.MethodPost, Path: "/v1/recalls/:id/outcome", Roles: payeeRole, Class: string(classWrites), Action: protocol.LogRecallReport, handle: (*Hub).recallOutcome},

		{Method: http.MethodPost, Path: "/v1/check", Roles: checkRole, Class: string(classChecks), Action: protocol.LogCheck, handle: (*Hub).check},
		{Method: http.MethodPost, Path: "/v1/checks/:id/outcome", Roles: checkRole, Class: string(classWrites), Action: protocol.LogCheckOutcome, handle: (*Hub).checkOutcome},
		{Method: http.MethodPost, Path: "/v1/checks/replica", Roles: checkRole, Class: string(classWrites), Action: protocol.LogReplicaCheck, handle: (*Hub).replicaChecks},
		{Method: http.MethodPost, Path: "/v1/checks/:id/denial", Roles: flagRole, Class: string(classWrites), Action: protocol.LogCheckDeny, handle: (*Hub).denyCheck},

		{Method: http.MethodPost, Path: "/v1/subjects/history", Roles: recordsOf, Class: string(classChecks), Action: protocol.LogSubjectHistory, handle: (*Hub).subjectHistory},
		{Method: http.MethodPost, Path: "/v1/subjects/report", Roles: recordsOf, Class: string(classChecks), Action: protocol.LogAccessReport, handle: (*Hub).accessReport},
		{Method: http.MethodPost, Path: "/v1/disputes", Roles: recordsOf, Class: string(classWrites), Action: protocol.LogDisputeOpen, handle: (*Hub).openDispute},
		{Method: http.MethodGet, Path: "/v1/disputes/:id", Roles: recordsOf, Class: string(classReads), handle: (*Hub).getDispute},
		{Method: http.MethodPost, Path: "/v1/disputes/:id/answer", Roles: recordsOf, Class: string(classWrites), Action: protocol.LogDisputeAnswer, handle: (*Hub).answerDisputeRoute},
		{Method: http.MethodPost, Path: "/v1/erasure-attestations", Roles: recordsOf, Class: string(classWrites), Action: protocol.LogErasureAttest, handle: (*Hub).attestErasure},
		{Method: http.MethodGet, Path: "/v1/erasure-attestations/:jti", Roles: logReader, Class: string(classReads), handle: (*Hub).attestationStatus},

		{Method: http.MethodGet, Path: "/v1/records/:jti", Roles: recordsOf, Class: string(classReads), handle: (*Hub).getRecord},

		{Method: http.MethodGet, Path: "/v1/events", Roles: subscriber, Class: string(classReads), handle: (*Hub).events},
		{Method: http.MethodGet, Path: "/v1/snapshot", Roles: recordsOf, Class: string(classReads), handle: (*Hub).snapshot},
		{Method: http.MethodGet, Path: "/v1/members/self", Roles: anyMember, Class: string(classReads), handle: (*Hub).self},
		{Method: http.MethodPut, Path: "/v1/members/self/endpoint", Roles: subscriber, Class: string(classWrites), Action: protocol.LogEndpointRegister, handle: (*Hub).putEndpoint},
		{Method: http.MethodGet, Path: "/v1/members/self/endpoint", Roles: subscriber, Class: string(classReads), handle: (*Hub).getEndpoint},
		{Method: http.MethodDelete, Path: "/v1/members/self/endpoint", Roles: subscriber, Class: string(classWrites), handle: (*Hub).deleteEndpoint},
		{Method: http.MethodPost, Path: "/v1/members/self/endpoint/secret", Roles: subscriber, Class: string(classWrites), handle: (*Hub).rotateSecret},
		{Method: http.MethodPost, Path: "/v1/members/self/endpoint/resume", Roles: subscriber, Class: string(classWrites), handle: (*Hub).resumeEndpoint},

		{Method: http.MethodPost, Path: ssfStreamPath, Roles: recordsOf, Class: string(classWrites), Action: protocol.LogEndpointRegister, handle: (*Hub).createStream},
		{Method: http.MethodGet, Path: ssfStreamPath, Roles: recordsOf, Class: string(classReads), handle: (*Hub).readStream},
		{Method: http.MethodPatch, Path: ssfStreamPath, Roles: recordsOf, Class: string(classWrites), Action: protocol.LogEndpointRegister, handle: (*Hub).updateStream},
		{Method: http.MethodPut, Path: ssfStreamPath, Roles: recordsOf, Class: string(classWrites), Action: protocol.LogEndpointRegister, handle: (*Hub).replaceStream},
		{Method: http.MethodDelete, Path: ssfStreamPath, Roles: recordsOf, Class: string(classWrites), handle: (*Hub).deleteStream},
		{Method: http.MethodGet, Path: ssfStatusPath, Roles: recordsOf, Class: string(classReads), handle: (*Hub).streamStatus},
		{Method: http.MethodPost, Path: ssfStatusPath, Roles: recordsOf, Class: string(classWrites), handle: (*Hub).setStreamStatus},
		{Method: http.MethodPost, Path: ssfVerifyPath, Roles: recordsOf, Class: string(classWrites), handle: (*Hub).verifyStream},
		{Method: http.MethodPost, Path: ssfPollPath, Roles: recordsOf, Class: string(classReads), handle: (*Hub).poll},

		{Method: http.MethodGet, Path: "/v1/log/checkpoint", Roles: anyone, handle: (*Hub).logCheckpoint},
		{Method: http.MethodGet, Path: "/v1/log/proof/inclusion", Roles: logReader, Class: string(classReads), handle: (*Hub).inclusionProof},
		{Method: http.MethodGet, Path: "/v1/log/proof/consistency", Roles: logReader, Class: string(classReads), handle: (*Hub).consistencyProof},
		{Method: http.MethodGet, Path: "/v1/log/witnesses", Roles: anyone, handle: (*Hub).witnessesStatus},
		{Method: http.MethodGet, Path: "/v1/log/entries", Roles: regulator, Class: string(classReads), handle: (*Hub).logEntries},
		{Method: http.MethodGet, Path: "/v1/log/tile/:level/*index", Roles: anyone, handle: (*Hub).logTile},
		{Method: http.MethodGet, Path: "/v1/log/tile/entries/*index", Roles: regulator, Class: string(classReads), handle: (*Hub).logEntryBundle},
		{Method: http.MethodGet, Path: "/v1/audit/entries", Roles: regulator, Class: string(classReads), handle: (*Hub).auditEntries},
		{Method: http.MethodGet, Path: "/v1/audit/stats", Roles: regulator, Class: string(classReads), handle: (*Hub).auditStats},
		{Method: http.MethodGet, Path: "/v1/audit/export", Roles: regulator, Class: string(classReads), handle: (*Hub).auditExport},
		{Method: http.MethodGet, Path: "/v1/audit/members", Roles: regulator, Class: string(classReads), handle: (*Hub).auditMembers},
		{Method: http.MethodGet, Path: "/v1/audit/erasure-attestations", Roles: []api.Role{api.RoleRegulator, api.RoleOperator}, Class: string(classReads), handle: (*Hub).overdueAttestations},

		{Method: http.MethodGet, Path: "/v1/admin/members", Roles: operator, Class: string(classReads), handle: (*Hub).listMembers},
		{Method: http.MethodPost, Path: "/v1/admin/members", Roles: operator, Class: string(classWrites), Action: protocol.LogMemberAdd, handle: (*Hub).addMember},
		{Method: http.MethodGet, Path: "/v1/admin/members/:id", Roles: operator, Class: string(classReads), handle: (*Hub).getMember},
		{Method: http.MethodPatch, Path: "/v1/admin/members/:id", Roles: operator, Class: string(classWrites), Action: protocol.LogMemberUpdate, handle: (*Hub).updateMember},
		{Method: http.MethodPost, Path: "/v1/admin/members/:id/suspend", Roles: operator, Class: string(classWrites), Action: protocol.LogMemberSuspend, handle: (*Hub).suspendMember},
		{Method: http.MethodPost, Path: "/v1/admin/members/:id/resume", Roles: operator, Class: string(classWrites), Action: protocol.LogMemberResume, handle: (*Hub).resumeMember},
		{Method: http.MethodGet, Path: "/v1/admin/endpoints", Roles: operator, Class: string(classReads), handle: (*Hub).listEndpoints},
		{Method: http.MethodPost, Path: "/v1/admin/erasures", Roles: operator, Class: string(classWrites), Action: protocol.LogSubjectErase, handle: (*Hub).erase},
		{Method: http.MethodGet, Path: "/v1/admin/backup", Roles: operator, Class: string(classReads), handle: (*Hub).backup},
		{Method: http.MethodGet, Path: "/v1/admin/peers", Roles: operator, Class: string(classReads), handle: (*Hub).listPeers},
		{Method: http.MethodPost, Path: "/v1/admin/peers", Roles: operator, Class: string(classWrites), Action: protocol.LogPeerRegister, handle: (*Hub).registerPeer},
		{Method: http.MethodDelete, Path: "/v1/admin/peers/:id", Roles: operator, Class: string(classWrites), Action: protocol.LogPeerRemove, handle: (*Hub).removePeer},
		{Method: http.MethodGet, Path: clusterPath, Roles: operator, Class: string(classReads), handle: (*Hub).clusterStatus},
		{Method: http.MethodPost, Path: clusterPath + "/servers", Roles: operator, Class: string(classWrites), handle: (*Hub).addClusterServer},
		{Method: http.MethodDelete, Path: clusterPath + "/servers/:id", Roles: operator, Class: string(classWrites), handle: (*Hub).removeClusterServer},
		{Method: http.MethodPost, Path: clusterPath + "/leadership", Roles: operator, Class: string(classWrites), handle: (*Hub).transferLeadership},
	}
}

// OpenAPIPath returns the route's path in OpenAPI syntax ("{id}"; a
// catch-all "*index" is "{index}" too).
func (r Route) OpenAPIPath() string {
	parts := strings.Split(r.Path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "*") {
			parts[i] = "{" + p[1:] + "}"
		}
	}
	return strings.Join(parts, "/")
}

// middleware returns the middleware every request passes through, in
// order: observe outside recover, so that a request whose handler
// panicked is counted and logged as the 500 it was; trace only when the
// hub has a TracerProvider, so that a hub without one spends nothing on
// spans.
func (h *Hub) middleware() []gin.HandlerFunc {
	if !h.tracing {
		return []gin.HandlerFunc{h.requestID, h.observe, h.recover}
	}
	return []gin.HandlerFunc{h.requestID, h.trace, h.observe, h.recover}
}

// routes builds the gin engine: the middleware of [Hub.middleware], then every
// route of Routes with its authentication, role and rate-limit checks.
func (h *Hub) routes() (*gin.Engine, error) {
	e := gin.New()
	if err := e.SetTrustedProxies(h.cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	e.Use(h.middleware()...)
	if h.cluster != nil {
		e.Use(h.forward)
	}
	e.NoRoute(func(c *gin.Context) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no route %s %s; see docs/openapi.yaml", c.Request.Method, c.Request.URL.Path))
	})
	e.NoMethod(func(c *gin.Context) {
		h.fail(c, problemf(protocol.ProblemMethodNotAllowed, "%s is not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	for _, r := range Routes() {
		handlers := []gin.HandlerFunc{h.describe(r)}
		if !r.Public() {
			handlers = append(handlers, h.authenticate(r), h.rateLimit(rateClass(r.Class)))
		}
		handle := r.handle
		handlers = append(handlers, func(c *gin.Context) { handle(h, c) })
		e.Handle(r.Method, r.Path, handlers...)
	}
	return e, nil
}
