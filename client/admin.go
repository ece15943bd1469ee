package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// The operator's calls: a client whose member holds the operator role
// registers and changes members, reads every webhook endpoint, erases a
// subject's data and takes backups. The hub refuses them, with
// [ErrForbidden], to any other member.

// Members returns every member, ordered by id.
func (c *Client) Members(ctx context.Context) ([]*api.Member, error) {
	var out api.MembersResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/admin/members"}, &out); err != nil {
		return nil, err
	}
	return out.Members, nil
}

// Member returns the member id; [ErrNotFound] if there is none.
func (c *Client) Member(ctx context.Context, id string) (*api.Member, error) {
	var out api.MemberResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: memberPath(id)}, &out); err != nil {
		return nil, err
	}
	return out.Member, nil
}

// AddMember registers a member with its id, name, roles and public keys
// (an inline JWK Set or an https URL, not both), and returns it as the hub
// stored it, with the index of the change's exchange-log entry. A member
// that already exists is [ErrStateConflict]; one the hub does not accept
// is [ErrValidation], its Errors naming the field. A repeat of a
// registration would be refused as existing, so one whose answer was lost
// is not sent again (see [Retry]): read [Client.Member] to find out.
func (c *Client) AddMember(ctx context.Context, req api.MemberRequest) (*api.MemberResponse, error) {
	return c.memberChange(ctx, request{method: http.MethodPost, path: "/v1/admin/members"}, req)
}

// UpdateMember changes what patch gives of a member's name, roles and
// keys; keys given inline replace a key set URL and the other way round.
// It returns the member after the change. A repeat sets the same fields
// again, so it is retried like a read.
func (c *Client) UpdateMember(ctx context.Context, id string, patch api.MemberPatch) (*api.MemberResponse, error) {
	return c.memberChange(ctx, request{method: http.MethodPatch, path: memberPath(id), idempotent: true}, patch)
}

// SuspendMember makes the hub refuse a member's requests and stop
// delivering to it; its records and history stay. A member already
// suspended is answered as it is, without a log index, so a repeat is
// safe. The operator cannot be suspended.
func (c *Client) SuspendMember(ctx context.Context, id string) (*api.MemberResponse, error) {
	return c.memberChange(ctx, request{method: http.MethodPost, path: memberPath(id) + "/suspend", idempotent: true}, nil)
}

// ResumeMember lets a suspended member use the hub again. A member already
// active is answered as it is, without a log index.
func (c *Client) ResumeMember(ctx context.Context, id string) (*api.MemberResponse, error) {
	return c.memberChange(ctx, request{method: http.MethodPost, path: memberPath(id) + "/resume", idempotent: true}, nil)
}

func memberPath(id string) string { return "/v1/admin/members/" + url.PathEscape(id) }

// memberChange sends a member change with body as JSON (none if nil).
func (c *Client) memberChange(ctx context.Context, r request, body any) (*api.MemberResponse, error) {
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r.contentType, r.body = "application/json", b
	}
	out := new(api.MemberResponse)
	if err := c.call(ctx, r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Endpoints returns every member's webhook endpoint and the state of
// delivery to it: what the operator watches ([Client.Endpoint] is the
// member's own).
func (c *Client) Endpoints(ctx context.Context) ([]*api.Endpoint, error) {
	var out api.EndpointsResponse
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/admin/endpoints"}, &out); err != nil {
		return nil, err
	}
	return out.Endpoints, nil
}

// An ErasureResult is the hub's answer to an erasure
// ([api.ErasureResponse]), with its subject-erased record verified.
type ErasureResult struct {
	// Record is the subject-erased record that tells every member to erase
	// what it holds about the subject, verified against the hub's keys;
	// nil if it did not verify (the erasure happened all the same).
	Record *protocol.Record
	// RecordJWS is the record exactly as signed.
	RecordJWS string
	// Seq is the record's sequence number in the event feed.
	Seq uint64
	// LogIndex is the index of the erasure's exchange-log entry.
	LogIndex uint64
	// RecordsErased and LogEntriesErased say how much the hub erased.
	RecordsErased    int
	LogEntriesErased int
}

// EraseSubject erases everything the hub holds about a subject (GDPR
// Art. 17): its flags and suspicions end, their records' personal data and
// the details of its log entries are deleted, and a subject-erased record
// tells every member to erase theirs. legalBasis names why, such as
// "gdpr-art-17". The record is verified to be of the erasure of subject
// ([Verifier.Erasure]); if it is not, the erasure has happened but the
// answer cannot be trusted: the error is a [*RecordError] and the result
// holds what the hub answered, without Record. An erasure acts anew each
// time it reaches the hub, so one whose answer was lost is not sent again
// (see [Retry]).
func (c *Client) EraseSubject(ctx context.Context, subject protocol.Token, legalBasis string) (*ErasureResult, error) {
	body, err := json.Marshal(api.ErasureRequest{Subject: subject.String(), LegalBasis: legalBasis})
	if err != nil {
		return nil, err
	}
	answer, err := c.fetch(ctx, request{method: http.MethodPost, path: "/v1/admin/erasures", contentType: "application/json", body: body})
	if err != nil {
		return nil, err
	}
	return c.verifier.Erasure(ctx, subject, answer)
}

// Backup writes a consistent copy of the hub's data file, taken while it
// runs, to w, and returns how many bytes it wrote. Start a hub on the copy,
// with the same keys, to restore it. The request is retried as a read
// until the copy begins (each backup is logged); a copy that breaks off
// midway is an error, and what w holds then is not a backup.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	return c.stream(ctx, request{method: http.MethodGet, path: "/v1/admin/backup", accept: "application/octet-stream"}, w)
}

// stream sends r and copies a successful answer's body to w.
func (c *Client) stream(ctx context.Context, r request, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("%s: copying the answer, after %d bytes: %w", r.op(), n, err)
	}
	return n, nil
}

// ClusterStatus returns a replicated hub's cluster as the node at the
// client's hub URL sees it (each node answers for itself); [ErrNotFound]
// from a single-node hub.
func (c *Client) ClusterStatus(ctx context.Context) (*api.ClusterStatus, error) {
	out := new(api.ClusterStatus)
	if err := c.call(ctx, request{method: http.MethodGet, path: "/v1/admin/cluster"}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// AddClusterServer adds a voting server to a replicated hub's cluster (or
// changes its raft address) and returns the cluster after the change. A
// repeat changes nothing more, so it is retried like a read.
func (c *Client) AddClusterServer(ctx context.Context, req api.ClusterServerRequest) (*api.ClusterStatus, error) {
	return c.clusterChange(ctx, request{method: http.MethodPost, path: "/v1/admin/cluster/servers", idempotent: true}, req)
}

// RemoveClusterServer removes a server from a replicated hub's cluster.
func (c *Client) RemoveClusterServer(ctx context.Context, id string) (*api.ClusterStatus, error) {
	return c.clusterChange(ctx, request{method: http.MethodDelete, path: "/v1/admin/cluster/servers/" + url.PathEscape(id)}, nil)
}

// TransferLeadership hands a replicated hub's leadership to the node to,
// or, empty, to the most up-to-date follower.
func (c *Client) TransferLeadership(ctx context.Context, to string) (*api.ClusterStatus, error) {
	return c.clusterChange(ctx, request{method: http.MethodPost, path: "/v1/admin/cluster/leadership"}, api.LeadershipRequest{To: to})
}

func (c *Client) clusterChange(ctx context.Context, r request, body any) (*api.ClusterStatus, error) {
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r.contentType, r.body = "application/json", b
	}
	out := new(api.ClusterStatus)
	if err := c.call(ctx, r, out); err != nil {
		return nil, err
	}
	return out, nil
}
