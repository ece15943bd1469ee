// Package federation is who takes part in a Spärr hub and how signals
// travel between them. It holds no code of its own; its sub-packages do,
// each named for what it holds:
//
//   - [github.com/sparr-dev/sparr/federation/members]: the members' key
//     sets (fetched, cached and rotated), the directory they are looked up
//     in, and the rule of which member is entitled to which record.
//   - [github.com/sparr-dev/sparr/federation/webhook]: delivery to members:
//     their webhook endpoints, the durable outbox the hub's store keeps for
//     them, the dispatcher that drains it on a retry schedule, and the
//     target policy that keeps deliveries off internal networks.
//   - [github.com/sparr-dev/sparr/federation/peering]: hub-to-hub peering,
//     by which every identifier is routed to its home hub.
//
// The member document itself (id, name, roles, keys, status) is part of the
// hub's API and lives in [github.com/sparr-dev/sparr/protocol/api], beside
// every other document the hub sends and a member reads.
package federation
