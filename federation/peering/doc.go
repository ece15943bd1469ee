// Package peering is hub-to-hub peering: how the hubs of Sweden, Norway,
// Denmark and Finland route every identifier to its one home hub. It holds
// what travels between hubs, apart from what travels to members (package
// webhook).
//
// Built so far: a [Peer], another hub as this hub's operator registered
// it (id, jurisdiction, URL, this hub's id and signing key there, the
// peer's pinned token key); the token relay, [Peer.EvaluateTokens],
// which sends a member's blinded batch to the home hub's [TokensPath]
// under a bearer token this hub signs; and the check relay,
// [Peer.CheckTokens], which sends a member's check of the home hub's
// tokens to its [CheckPath] the same way; and events across hubs: a home
// hub delivers the records of its identifiers to its peers as to members,
// and a peer takes them at [EventsPath], checking them with the home hub's
// [Keys] (fetched from its URL and cached). docs/peering.md describes the
// whole design and marks what is not yet built.
//
// The design it is to follow (docs/architecture.md, Across borders): every
// identifier has one home hub, by jurisdiction, and its tokens exist only
// under that hub's OPRF key. Peered hubs register each other (peer id, URL,
// keys, policy); a hub relays blinded token evaluations, writes and checks
// for foreign identifiers to their home hub, signing each request as
// members sign theirs; the home hub delivers events for its identifiers to
// subscribed peers, which fan them out to their own members. Records stay
// signed end to end by the home hub; relays add signed "via" entries; a hop
// limit and jti de-duplication prevent loops; per-peer policy decides what
// flows.
package peering
