package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// homeKeys holds the record-signing keys of the home hubs the member's hub
// relays to (its configuration's home_tokens): the records of a check or
// write of another country's identifiers are signed by their home hub, and
// verified with its keys, each cache held to its own issuer.
type homeKeys struct {
	c  *Client
	mu sync.Mutex
	by map[string]*Keys // issuer → keys
}

// keys returns a key cache for each home hub the configuration lists.
func (h *homeKeys) keys(ctx context.Context) ([]*Keys, error) {
	conf, err := h.c.Configuration(ctx)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.by == nil {
		h.by = map[string]*Keys{}
	}
	var out []*Keys
	for _, ht := range conf.HomeTokens {
		if ht.Issuer == "" {
			continue
		}
		k := h.by[ht.Issuer]
		if k == nil {
			k = NewKeys(KeysConfig{Source: h.source(ht), Issuer: ht.Issuer, MinRefresh: h.c.cfg.KeyRefresh, Now: h.c.cfg.Now})
			h.by[ht.Issuer] = k
		}
		out = append(out, k)
	}
	return out, nil
}

// source fetches the home hub's published key set, at its issuer's
// /.well-known/jwks.json.
func (h *homeKeys) source(ht api.HomeToken) KeySource {
	return KeySourceFunc(func(ctx context.Context) (*protocol.KeySet, error) {
		resp, err := h.c.send(ctx, request{method: http.MethodGet, url: strings.TrimSuffix(ht.Issuer, "/") + "/.well-known/jwks.json", anonymous: true})
		if err != nil {
			return nil, fmt.Errorf("the home hub of %s: %w", ht.Jurisdiction, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxKeySetSize+1))
		if err != nil {
			return nil, fmt.Errorf("read the keys of the home hub of %s: %w", ht.Jurisdiction, err)
		}
		return protocol.ParseKeySet(body)
	})
}

// verify verifies a record with the hub's keys or, if they do not verify
// it, with those of the home hub that signed it (Homes). The hub's error
// is returned if no home hub's keys verify it either.
func (v *Verifier) verify(ctx context.Context, jws []byte) (*protocol.Record, error) {
	rec, err := v.Keys.Verify(ctx, jws)
	var re *RecordError
	if err == nil || v.Homes == nil || !errors.As(err, &re) {
		return rec, err
	}
	homes, herr := v.Homes(ctx)
	if herr != nil {
		return nil, err
	}
	for _, k := range homes {
		if r, herr := k.Verify(ctx, jws); herr == nil {
			return r, nil
		}
	}
	return nil, err
}
