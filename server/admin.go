package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/store"
)

// memberRequest is the body of POST /v1/admin/members.
type memberRequest struct {
	ID      string          `json:"id"`
	Name    string          `json:"name"`
	Roles   []api.Role      `json:"roles"`
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL string          `json:"jwks_url,omitempty"`
}

// memberPatch is the body of PATCH /v1/admin/members/{id}: the fields to
// change. Setting jwks clears jwks_url and the other way round.
type memberPatch struct {
	Name    *string         `json:"name,omitempty"`
	Roles   *[]api.Role     `json:"roles,omitempty"`
	JWKS    json.RawMessage `json:"jwks,omitempty"`
	JWKSURL *string         `json:"jwks_url,omitempty"`
}

// adminCommand records a change to a member, committing to the member
// document it writes.
func (h *Hub) adminCommand(actor string, action protocol.LogAction, m *api.Member, create bool) (*store.Command, error) {
	doc, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return &store.Command{
		At: h.now(), Actor: actor, Action: action, Salt: salt(), Details: doc,
		Attrs:  []protocol.LogAttr{{Key: "member", Value: m.ID}},
		Member: m, CreateMember: create,
	}, nil
}

// putMember validates and applies a member change, and answers.
func (h *Hub) putMember(c *gin.Context, action protocol.LogAction, m *api.Member, create bool, status int) {
	m.Normalize()
	if err := m.Validate(h.cfg.AllowInsecureURLs); err != nil {
		h.fail(c, problemf(protocol.ProblemValidation, "%v", err))
		return
	}
	cmd, err := h.adminCommand(member(c).ID, action, m, create)
	if err != nil {
		h.internal(c, "encode member", err)
		return
	}
	res, err := h.store.Apply(cmd)
	switch {
	case err != nil:
		h.internal(c, "apply "+string(action), err)
		return
	case res.Conflict && create:
		h.fail(c, problemf(protocol.ProblemStateConflict, "member %q already exists; change it with PATCH /v1/admin/members/%s", m.ID, m.ID))
		return
	case res.Conflict:
		h.fail(c, problemf(protocol.ProblemNotFound, "no member %q", m.ID))
		return
	}
	h.members.Forget(m.ID)
	h.bearers.forget(m.ID)
	if create {
		c.Header("Location", "/v1/admin/members/"+m.ID)
	}
	c.JSON(status, gin.H{"member": m, "log_index": res.LogIndex})
}

// addMember: POST /v1/admin/members.
func (h *Hub) addMember(c *gin.Context) {
	var req memberRequest
	if !h.readJSON(c, &req) {
		return
	}
	now := h.now().UTC()
	m := &api.Member{ID: req.ID, Name: req.Name, Roles: req.Roles, JWKS: req.JWKS, JWKSURL: req.JWKSURL,
		Status: api.MemberActive, CreatedAt: now, UpdatedAt: now}
	h.putMember(c, protocol.LogMemberAdded, m, true, http.StatusCreated)
}

// loadMember reads the member named in the URL.
func (h *Hub) loadMember(c *gin.Context) (*api.Member, bool) {
	m, err := h.store.Member(c, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no member %q", c.Param("id")))
		return nil, false
	}
	if err != nil {
		h.internal(c, "read member", err)
		return nil, false
	}
	return m, true
}

// updateMember: PATCH /v1/admin/members/{id}.
func (h *Hub) updateMember(c *gin.Context) {
	var patch memberPatch
	if !h.readJSON(c, &patch) {
		return
	}
	m, ok := h.loadMember(c)
	if !ok {
		return
	}
	if patch.Name != nil {
		m.Name = *patch.Name
	}
	if patch.Roles != nil {
		m.Roles = *patch.Roles
	}
	if patch.JWKS != nil {
		m.JWKS, m.JWKSURL = patch.JWKS, ""
	}
	if patch.JWKSURL != nil {
		m.JWKS, m.JWKSURL = nil, *patch.JWKSURL
	}
	if m.ID == OperatorID && (patch.Roles != nil || patch.JWKS != nil || patch.JWKSURL != nil) {
		h.fail(c, problemf(protocol.ProblemStateConflict, "the operator's roles and keys come from the hub's key files; replace operator.pub.jwk and restart instead"))
		return
	}
	m.UpdatedAt = h.now().UTC()
	h.putMember(c, protocol.LogMemberUpdated, m, false, http.StatusOK)
}

// setStatus suspends or resumes the member in the URL.
func (h *Hub) setStatus(c *gin.Context, status api.MemberStatus, action protocol.LogAction) {
	m, ok := h.loadMember(c)
	if !ok {
		return
	}
	if m.ID == OperatorID {
		h.fail(c, problemf(protocol.ProblemStateConflict, "the operator cannot be suspended or resumed"))
		return
	}
	if m.Status == status {
		c.JSON(http.StatusOK, gin.H{"member": m})
		return
	}
	m.Status, m.UpdatedAt = status, h.now().UTC()
	h.putMember(c, action, m, false, http.StatusOK)
}

// suspendMember: POST /v1/admin/members/{id}/suspend. A suspended member's
// requests are refused with 403; its records stay.
func (h *Hub) suspendMember(c *gin.Context) {
	h.setStatus(c, api.MemberSuspended, protocol.LogMemberSuspended)
}

// resumeMember: POST /v1/admin/members/{id}/resume.
func (h *Hub) resumeMember(c *gin.Context) {
	h.setStatus(c, api.MemberActive, protocol.LogMemberResumed)
}

// listMembers: GET /v1/admin/members.
func (h *Hub) listMembers(c *gin.Context) {
	ms, err := h.store.Members()
	if err != nil {
		h.internal(c, "list members", err)
		return
	}
	if ms == nil {
		ms = []*api.Member{}
	}
	c.JSON(http.StatusOK, gin.H{"members": ms})
}

// getMember: GET /v1/admin/members/{id}.
func (h *Hub) getMember(c *gin.Context) {
	if m, ok := h.loadMember(c); ok {
		c.JSON(http.StatusOK, gin.H{"member": m})
	}
}

// backup: GET /v1/admin/backup, a consistent copy of the data file while
// the hub runs. Start a hub on the copy to restore it.
func (h *Hub) backup(c *gin.Context) {
	m, now := member(c), h.now()
	if _, err := h.store.Apply(&store.Command{At: now, Actor: m.ID, Action: protocol.LogBackup}); err != nil {
		h.internal(c, "log backup", err)
		return
	}
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="sparr-%s.db"`, now.UTC().Format("20060102T150405Z")))
	c.Status(http.StatusOK)
	if _, err := h.store.Backup(c.Writer); err != nil {
		h.log.Error("backup failed midway", "request_id", c.GetString(keyRequestID), "error", err)
		panic(http.ErrAbortHandler) // cut the response so the client sees a broken copy, not a short one
	}
}
