// Package replica keeps a member's local mirror of the hub's records, so
// that identity checks are answered in process, in well under a
// microsecond, without asking the hub, and keep being answered while the
// hub is out of reach.
//
// # What it holds
//
// A replica holds what the member is entitled to and the hub still holds:
// every active protection flag with its signed records (placed, extended,
// thawed), and every active suspicion hit. It keeps them in one bbolt file,
// the durable copy, and indexes them in memory at [Open]; every change goes
// to the file before it is acknowledged. What a lift, an expiry, a
// retraction or an erasure removes, it deletes: a consumer who withdraws
// consent is forgotten by every member. A lift or expiry removes the flag
// held for its token; an erasure everything held for its tokens.
//
// # Staying up to date
//
//	rep, err := replica.Open("/var/lib/bank/sparr-replica.db", replica.Config{Client: c})
//	if err := rep.Sync(ctx); err != nil { … } // bootstrap, or catch up after a restart
//	rcv, _ := client.NewReceiver(client.ReceiverConfig{Client: c, Handle: rep.Apply})
//	go rep.Run(ctx) // a safety net: reads the feed every minute
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
//	switch rep.Check(tok).Advice {
//	case api.AdviceVerify: // an active flag: confirm the applicant with strong authentication
//	case api.AdviceReview: // police-reported suspicions: look closer
//	case api.AdviceNone:
//	}
//
// [Replica.Check] gives the advice the hub's check would give at the same
// moment: thaw windows and expiry are judged when it is called (by
// Config.Now), so a thaw that ends or a flag that runs out changes the
// answer even before the hub's record of it arrives. A local check is not
// logged at the hub; a member that must have its checks in the exchange
// log, or that needs the hub's word, calls [client.Client.Check] as well.
package replica
