// Package members is the hub's view of its members' keys and rights.
//
// # Keys
//
// Members sign their bearer tokens and submissions; the protected header of
// each names the member ("iss") and the key ("kid"). [Keys] implements
// [protocol.KeyResolver] over a [Directory] of members ([api.Member]): it
// parses inline key sets once, fetches key sets from URLs and caches them,
// picks up a rotated key when a new kid appears, and refetches at most once
// per [KeysConfig.MinRefresh] however many unknown kids arrive, so that
// forged headers cannot turn the hub against a member's key server.
//
// # Entitlement
//
// [Entitled] is the one rule of which member may receive which record: the
// webhook dispatcher, the feed, the snapshot and GET /v1/records all apply
// it, so that a record reaches a member by every path or by none.
package members
