package decide

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// OperatorID is the member id of the operator, whom the hub registers
// from its operator key. No other member may be registered with it.
const OperatorID = "operator"

// Why the hub suspends a member on its own when it starts (see
// [Decider.AtStart]): the reason attribute of its member-suspended entry.
const (
	// ReasonReservedID: the member's id is [api.HubID], reserved for the
	// hub's own entries; a data file of an earlier version may hold one.
	ReasonReservedID = "reserved-id"
	// ReasonOperatorKeyReplaced: the member held the operator role when
	// the operator key was replaced.
	ReasonOperatorKeyReplaced = "operator-key-replaced"
)

// putMember validates m and decides the command that writes it, committing
// to the member document.
func (d *Decider) putMember(actor string, action protocol.LogAction, m *api.Member, create bool, now time.Time) (*state.PutMember, error) {
	m.Normalize()
	if err := m.Validate(d.AllowInsecureURLs); err != nil {
		return nil, problemf(protocol.ProblemValidation, "%v", err)
	}
	return d.memberCommand(actor, action, m, create, now), nil
}

func (d *Decider) memberCommand(actor string, action protocol.LogAction, m *api.Member, create bool, now time.Time, attrs ...protocol.LogAttr) *state.PutMember {
	h := d.head(actor, action, now, nil, nil, append([]protocol.LogAttr{{Key: "member", Value: m.ID}}, attrs...)...)
	h.Entry.Salt, h.Entry.Details = d.salt(), encode(m)
	return &state.PutMember{Head: h, Member: m, Create: create}
}

// AddMember decides the operator op's registration of a new member. The
// id may be neither [api.HubID] (see [api.Member.Validate]) nor
// [OperatorID], the hub's own operator.
func (d *Decider) AddMember(op *api.Member, req api.MemberRequest, now time.Time) (*state.PutMember, error) {
	if req.ID == OperatorID {
		return nil, FieldProblem(protocol.ProblemValidation, "id", "%q is reserved for the hub's own operator, whose key is keys/operator.pub.jwk; choose another id", req.ID)
	}
	now = now.UTC()
	m := &api.Member{ID: req.ID, Name: req.Name, Roles: req.Roles, JWKS: req.JWKS, JWKSURL: req.JWKSURL, Quotas: req.Quotas,
		Status: api.MemberActive, CreatedAt: now, UpdatedAt: now}
	return d.putMember(op.ID, protocol.LogMemberAdded, m, true, now)
}

// UpdateMember decides the operator op's change of member m (nil: the hub
// holds none with the id). Setting jwks clears jwks_url and the other way
// round; the operator's own roles and keys come from the hub's key files.
func (d *Decider) UpdateMember(op *api.Member, id string, m *api.Member, patch api.MemberPatch, now time.Time) (*state.PutMember, error) {
	if m == nil {
		return nil, noMember(id)
	}
	n := *m
	if patch.Name != nil {
		n.Name = *patch.Name
	}
	if patch.Roles != nil {
		n.Roles = *patch.Roles
	}
	if patch.JWKS != nil {
		n.JWKS, n.JWKSURL = patch.JWKS, ""
	}
	if patch.JWKSURL != nil {
		n.JWKS, n.JWKSURL = nil, *patch.JWKSURL
	}
	if patch.Quotas != nil {
		n.Quotas = patch.Quotas
		if *patch.Quotas == (api.Quotas{}) {
			n.Quotas = nil
		}
	}
	if n.ID == OperatorID && (patch.Roles != nil || patch.JWKS != nil || patch.JWKSURL != nil) {
		return nil, problemf(protocol.ProblemStateConflict, "the operator's roles and keys come from the hub's key files; replace operator.pub.jwk and restart instead")
	}
	n.UpdatedAt = now.UTC()
	return d.putMember(op.ID, protocol.LogMemberUpdated, &n, false, now)
}

// SetMemberStatus decides the operator op's suspension or resumption of
// member m (nil: none with the id). It returns no command, and no error,
// when m already has the status.
func (d *Decider) SetMemberStatus(op *api.Member, id string, m *api.Member, status api.MemberStatus, now time.Time) (*state.PutMember, error) {
	switch {
	case m == nil:
		return nil, noMember(id)
	case m.ID == OperatorID:
		return nil, problemf(protocol.ProblemStateConflict, "the operator cannot be suspended or resumed")
	case m.Status == status:
		return nil, nil
	}
	action := protocol.LogMemberResumed
	if status == api.MemberSuspended {
		action = protocol.LogMemberSuspended
	}
	n := *m
	n.Status, n.UpdatedAt = status, now.UTC()
	return d.putMember(op.ID, action, &n, false, now)
}

// MemberConflict is the problem for a member command that conflicted:
// the member exists already (a creation) or no longer exists.
func MemberConflict(c *state.PutMember) *protocol.Problem {
	if c.Create {
		return problemf(protocol.ProblemStateConflict, "member %q already exists; change it with PATCH /v1/admin/members/%s", c.Member.ID, c.Member.ID)
	}
	return noMember(c.Member.ID)
}

func noMember(id string) *protocol.Problem {
	return problemf(protocol.ProblemNotFound, "no member %s", Quote(id))
}

// Self is what member m is shown of itself by GET /v1/members/self: its
// id, name, roles and status, the quotas that apply to it (its own, the
// policy's where it has none), and its endpoint e (nil: it has none). It
// shows no key and no secret, and reads nothing of another member.
func (d *Decider) Self(m *api.Member, e *api.Endpoint) *api.SelfResponse {
	s := &api.SelfResponse{ID: m.ID, Name: m.Name, Roles: slices.Clone(m.Roles), Status: m.Status,
		Quotas: d.QuotasOf(m), Endpoint: e, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
	if m.Quotas != nil && *m.Quotas != (api.Quotas{}) {
		own := *m.Quotas
		s.OwnQuotas = &own
	}
	return s
}

// Operator decides the operator member at the hub's start: created on the
// first start, its key set (jwks) replaced when the operator key was. m is
// the operator as the hub holds it (nil: none yet). It returns no command
// when nothing changes.
func (d *Decider) Operator(m *api.Member, jwks json.RawMessage, now time.Time) *state.PutMember {
	now = now.UTC()
	if m == nil {
		m = &api.Member{ID: OperatorID, Name: "Hub operator", Roles: []api.Role{api.RoleOperator},
			JWKS: jwks, Status: api.MemberActive, CreatedAt: now, UpdatedAt: now}
		return d.memberCommand(Hub, protocol.LogMemberAdded, m, true, now)
	}
	if string(m.JWKS) == string(jwks) {
		return nil
	}
	n := *m
	n.JWKS, n.UpdatedAt = jwks, now
	return d.memberCommand(Hub, protocol.LogMemberUpdated, &n, false, now)
}

// AtStart decides what the hub changes about its members when it starts,
// from every member it holds, the operator's key set (from its key file)
// and the time:
//
//   - the operator member is made on the first start, or its key set
//     replaced when the key file was (see [Decider.Operator]);
//   - when the operator key was replaced, every other active member that
//     holds the operator role is suspended: whoever held the old key may
//     have registered it, so the new key's holder resumes those it
//     vouches for;
//   - a member whose id is [api.HubID] (a data file of an earlier version
//     may hold one) is suspended, so that no entry by it is written from
//     then on to be mistaken for the hub's own; it cannot be resumed.
//
// The hub's suspensions are member-suspended entries by [Hub], with the
// reason in attribute reason. AtStart returns nothing when nothing
// changes: a second start on the same key suspends no one again.
func (d *Decider) AtStart(members []*api.Member, jwks json.RawMessage, now time.Time) []*state.PutMember {
	now = now.UTC()
	var operator *api.Member
	for _, m := range members {
		if m.ID == OperatorID {
			operator = m
		}
	}
	var out []*state.PutMember
	if cmd := d.Operator(operator, jwks, now); cmd != nil {
		out = append(out, cmd)
	}
	replaced := operator != nil && len(out) > 0
	for _, m := range members {
		reason := ""
		switch {
		case m.ID == api.HubID:
			reason = ReasonReservedID
		case replaced && m.ID != OperatorID && m.HasRole(api.RoleOperator):
			reason = ReasonOperatorKeyReplaced
		}
		if reason == "" || !m.Active() {
			continue
		}
		n := *m
		n.Status, n.UpdatedAt = api.MemberSuspended, now
		out = append(out, d.memberCommand(Hub, protocol.LogMemberSuspended, &n, false, now, protocol.LogAttr{Key: "reason", Value: reason}))
	}
	return out
}

// DeclareRollback decides the log entry of a rollback the operator
// declared at start (see [protocol.Rollback]): the operator's entry, with
// the reason and the checkpoint given up as its attributes.
func (d *Decider) DeclareRollback(r *protocol.Rollback, now time.Time) *state.Note {
	return &state.Note{Head: d.head(OperatorID, protocol.LogRollbackDeclared, now, nil, nil, r.Attrs()...)}
}

// Backup decides the log entry of a backup taken by op.
func (d *Decider) Backup(op *api.Member, now time.Time) *state.Note {
	return &state.Note{Head: d.head(op.ID, protocol.LogBackup, now, nil, nil)}
}

// ClusterChange is the log entry of the operator's change of a replicated
// hub's cluster: change is add, remove or transfer-leadership, node the
// server's id (for a transfer, the node chosen; empty for any).
func (d *Decider) ClusterChange(op *api.Member, change, node string, now time.Time) *state.Note {
	attrs := []protocol.LogAttr{{Key: "change", Value: change}}
	if node != "" {
		attrs = append(attrs, protocol.LogAttr{Key: "node", Value: node})
	}
	return &state.Note{Head: d.head(op.ID, protocol.LogClusterChanged, now, nil, nil, attrs...)}
}
