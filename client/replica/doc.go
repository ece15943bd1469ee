// Package replica keeps a member's local mirror of the hub's records, so
// that identity checks for protection flags are answered in process, in
// well under a microsecond, without asking the hub, and keep being
// answered while the hub is out of reach. It reports every check it
// answers to the hub, in batches, so that the hub logs them as it logs
// online checks.
//
// # What it holds
//
// A replica holds what the member is entitled to and the hub still holds:
// every active protection flag with its signed records (placed, extended,
// thawed), and the active suspicions the member reported itself. It
// holds no other member's suspicion: the hub addresses a suspicion's
// records to its reporter alone, and sends no one else a suspicion in
// bulk (feed, webhook or snapshot). So a replica answers for flags as the
// hub does, and for suspicions only for the member's own; whether other
// members reported suspicions about a token takes an online check
// ([client.Client.Check]), which answers a hit, its count and its
// categories, and is logged.
//
// It keeps them in one bbolt file, the durable copy, and indexes them in
// memory at [Open]; every change goes to the file before it is
// acknowledged. What a lift, an expiry, a retraction or an erasure
// removes, it deletes: a consumer who withdraws consent is forgotten by
// every member. A lift or expiry removes the flag held for its token; an
// erasure everything held for its tokens (an erasure of a subject with
// suspicions and no flag reaches only the suspicions' reporters).
//
// # Staying up to date
//
//	rep, err := replica.Open("/var/lib/bank/sparr-replica.db", replica.Config{Client: c})
//	if err := rep.Sync(ctx); err != nil { … } // bootstrap, or catch up after a restart
//	rcv, _ := client.NewReceiver(client.ReceiverConfig{Client: c, Handle: rep.Apply})
//	go rep.Run(ctx) // a safety net: reads the feed every minute; reports checks every few seconds
//
// [Replica.Sync] bootstraps an empty replica from the hub's snapshot, and
// catches a reopened one up from the feed after its last sequence number.
// [Replica.Apply] takes a pushed event as a signal that the hub has
// something new: it reads the feed from the replica's last sequence
// number, which brings that event and every one before it that the
// replica has not applied, missed deliveries included. The replica moves
// only as the hub's feed and snapshot say, never by a delivery's sequence
// headers, which the delivery's signature does not cover; so it answers as
// the hub does whatever event types the member's endpoint subscribes to.
// Register the endpoint for every event type (no filter) all the same:
// then every change wakes the replica at once, while with a filter a
// change of another type arrives with the next push, or at [Replica.Run]'s
// next read of the feed. When the hub no longer keeps the events missed
// (the feed's cursor expired after a long absence), or its feed ends
// before the replica's sequence number (a hub restored from an older
// backup), the replica starts again from a snapshot, and logs why.
//
// # Checking
//
//	switch rep.Check(api.PurposeCreditApplication, tok).Advice {
//	case api.AdviceVerify: // an active flag: confirm the applicant with strong authentication
//	case api.AdviceReview: // suspicions the member reported itself: look closer
//	case api.AdviceNone:   // no flag; other members' suspicions need c.Check
//	}
//
// [Replica.Check] gives the advice the hub's check would give at the same
// moment for flags: thaw windows and expiry are judged when it is called
// (by Config.Now), so a thaw that ends or a flag that runs out changes the
// answer even before the hub's record of it arrives. [Replica.Lookup]
// answers alike but is not a check: it is not recorded nor reported, and
// is for audits of what the replica holds, tests and comparisons with the
// hub, never for a decision about an applicant.
//
// # Reporting checks
//
// A check records its token, purpose and time in a queue in memory (a
// short append under a mutex: it refuses nothing and waits for no
// network). [Replica.Run] reports the queue every Config.ReportInterval
// (5 s by default) through [client.Client.ReportReplicaChecks], at most
// api.MaxReplicaChecks checks a report; the hub logs one replica-check
// entry per report, indexed under the tokens, so that a lift or an
// erasure of the subject erases it as it does an online check's. A
// member that closes calls [Replica.Flush] first. What could not be
// reported stays queued and is reported later, up to
// Config.MaxUnreported checks (128 000 by default: a week of the largest
// member's checks, the oldest the hub takes); beyond that a check is answered but not recorded, and counted
// and logged as dropped. A check the hub refuses (a purpose it does not
// know, a token of an old epoch) is dropped and logged, so that it never
// holds up the others. [Replica.Stats] counts what became of the checks.
//
// Reports rest on the member's honesty: the hub cannot know of a check
// that a member answers from its replica and does not report, nor of one
// made with Lookup. What catches a member that does not report is the
// reconciliation signal of docs/threat-model.md: the regulator's audit
// statistics set, per member and day, the identifiers it tokenized beside
// the identities it checked online and in its replica, and a member that
// tokenizes far more than it checks or reports stands out by the next day.
// A member whose rules need the hub's own word on an applicant, or
// suspicion hits of other members, calls [client.Client.Check] as well.
//
// # Attesting erasure
//
// When a lift, expiry, retraction or erasure record makes the replica
// delete a flag or a suspicion, it marks the record in its file in the
// same transaction, and after each sync attests the deletions to the hub
// (client.Client.AttestErasure), so that the flag's origin can tell the
// consumer how many members deleted their copy. An attestation the hub
// does not take now (out of reach, a spent quota) stays in the file for
// the next sync, across restarts; [Replica.PendingAttestations] counts
// them.
package replica
