// Package webhook delivers the hub's signed records to its members'
// webhook endpoints.
//
// # Endpoints
//
// A member registers one [Endpoint]: a URL, the event types it wants, and
// whsec_ secrets that sign each attempt (Standard Webhooks v1, beside the
// hub's Ed25519 v1a signature). An endpoint is unverified until the
// verification event reaches it, active while deliveries succeed, paused
// when the retry schedule runs out, and disabled by a 410 Gone or by its
// member (see [api.EndpointStatus]).
//
// # Outbox and dispatcher
//
// Every record the hub applies writes, in the same store transaction, one
// [Delivery] row per member that is to get it: the [Outbox], which the
// hub's store implements. A [Dispatcher] drains it, one worker per
// endpoint: an RFC 8935 POST of the record's compact JWS with fresh
// signatures on each attempt and the same webhook-id every time, retries on
// [DefaultSchedule] with jitter, Retry-After honoured, 410 treated as
// unsubscribe, other 4xx dead-lettered ([DeadLetter]). Every outcome is
// recorded durably before the next attempt, so a crash or restart loses
// nothing and repeats only what may have been cut off.
//
// # Target policy
//
// A [TargetPolicy] decides which URLs members may register and which
// addresses the hub may connect to, after DNS resolution and again at
// connect time: public HTTPS only, unless the operator allows a prefix.
// docs/delivery.md lists what it refuses and why.
package webhook
