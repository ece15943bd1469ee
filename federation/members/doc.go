// Package members is the hub's view of its members' keys and rights.
//
// # Keys
//
// Members sign their bearer tokens and submissions; the protected header of
// each names the member ("iss") and the key ("kid"). [Keys] implements
// [protocol.KeyResolver] over a [Directory] of members ([api.Member]): it
// parses inline key sets once, and fetches key sets from URLs and caches
// them.
//
// A fetched set is used for as long as its answer's Cache-Control max-age
// (or else Expires) says, but for at least 30 seconds and at most 5 minutes
// ([KeysConfig.MinAge], [KeysConfig.MaxAge]), and for 5 minutes if the
// answer says nothing; so a key a member removes from its set stops
// verifying within 5 minutes. A kid the cached set lacks causes a refetch
// at once, so a member's new key verifies on its first use; but there is
// at most one fetch per member per 10 seconds ([KeysConfig.MinRefresh])
// however many unknown kids arrive, so that forged headers cannot turn the
// hub against a member's key server, and a new key waits at most that long
// even while they do. A set whose refetch fails stays in use for up to an
// hour past its expiry ([KeysConfig.MaxStale]).
//
// What answers at a member's URL is not trusted. A redirect is refused,
// not followed; the answer must be 200 OK with a JSON media type and at
// most [protocol.MaxKeySetSize] bytes; and no error quotes any of its body,
// since errors reach the hub's logs: they say what was wrong instead (the
// status, the media type, the size, what kind of thing the body is). Which
// addresses may be connected to at all is for [KeysConfig.HTTPClient]'s
// transport to decide: the hub's dials through its webhook target policy,
// which refuses loopback, private, link-local and other special addresses
// unless the operator allows them.
//
// # Entitlement
//
// [Entitled] is the one rule of which member may receive which record: the
// webhook dispatcher, the feed, the snapshot and GET /v1/records all apply
// it, so that a record reaches a member by every path or by none.
package members
