package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// A RawRequest is a request that [Client.Raw] sends to the hub exactly as
// given: for tools and tests that must send what the client's other calls
// never would, such as a malformed body, a wrong content type, or a route
// the client has no call for.
type RawRequest struct {
	Method string
	// Path is the path on the hub, with its query, such as
	// "/v1/events?after=0".
	Path string
	// ContentType, if not empty, is sent as the Content-Type header.
	ContentType string
	Body        []byte
	// Anonymous sends the request without the member's bearer token.
	Anonymous bool
}

// A RawResponse is the hub's answer to a [RawRequest], as received.
type RawResponse struct {
	Status int
	Header http.Header
	Body   []byte

	op string
}

// Problem reads the answer as the client reads every error answer: the
// problem document as the hub sent it, or, for an answer that is not one,
// its status, the start of its body and its request id. It is nil for a
// 2xx answer.
func (r *RawResponse) Problem() *Problem {
	if r.Status >= 200 && r.Status < 300 {
		return nil
	}
	return parseProblem(r.op, r.Status, r.Header, r.Body)
}

// Raw sends r once, with the member's bearer token unless r.Anonymous, and
// returns the answer whatever its status. It never sends a request again,
// and never checks or verifies the answer: that is the caller's part. An
// error means that no whole answer arrived (the hub could not be reached,
// the connection broke, the answer was over 64 MiB) or that no bearer
// token could be made; it wraps the cause, such as a *net.OpError. Members
// use the client's other calls; Raw is for tools and tests, so that they
// too make their requests and bearer tokens through the SDK.
func (c *Client) Raw(ctx context.Context, r RawRequest) (*RawResponse, error) {
	req := request{method: r.Method, path: r.Path, contentType: r.ContentType, body: r.Body, anonymous: r.Anonymous, raw: true}
	var bearer string
	if !r.Anonymous {
		tok, err := c.bearerToken(ctx)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", req.op(), err)
		}
		bearer = tok
	}
	resp, err := c.once(ctx, req, int(c.cur.Load()), bearer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", req.op(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", req.op(), err)
	}
	if len(body) > maxAnswerSize {
		return nil, fmt.Errorf("%s: the answer is over %d bytes", req.op(), maxAnswerSize)
	}
	return &RawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body, op: req.op()}, nil
}

// BearerToken returns the bearer token the client authenticates with,
// minting a new one when there is none or the last is within a minute of
// its expiry, as every call of the client does. It is for tools and tests
// that hand the token to another program or replay it; the client's calls
// need nothing of it.
func (c *Client) BearerToken(ctx context.Context) (string, error) {
	return c.bearerToken(ctx)
}

// queryPath joins a path and query parameters given as name, value pairs,
// escaped, leaving out those with an empty value.
func queryPath(path string, params ...string) string {
	var q []string
	for i := 0; i+1 < len(params); i += 2 {
		if params[i+1] != "" {
			q = append(q, url.QueryEscape(params[i])+"="+url.QueryEscape(params[i+1]))
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + strings.Join(q, "&")
}
