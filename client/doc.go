// Package client is the member SDK of Spärr: what a bank or payment
// provider links into its own services to share fraud signals through a
// hub. It turns identifiers into tokens, places, thaws and lifts protection
// flags with the consumer's consent, shares police-reported suspicions,
// checks identities, and receives the hub's signed records by webhook, by
// feed and by snapshot. Package [github.com/sparr-dev/sparr/client/replica]
// keeps those records in a local file so that checks are answered in
// process. The client imports no package of the hub; it speaks the wire
// format of package protocol, decodes the hub's answers into the documents
// of package [github.com/sparr-dev/sparr/protocol/api] (called api below),
// and docs/member-integration.md walks through an integration.
//
// # Connecting
//
// The operator registers the member with an id, its roles and the public
// half of its signing key; the member keeps the private half:
//
//	key, _ := protocol.ParseSigningKey(privateJWK)
//	c, err := client.New(client.Config{
//		HubURL:   "https://hub.example",
//		MemberID: "bank-a",
//		Key:      key,
//	})
//
// The client reads the hub's configuration document on first use, signs a
// short-lived bearer token for its requests and reuses it until a minute
// before it expires, and verifies every record the hub sends against the
// hub's published keys ([Client.Keys]), fetching them again, at most once
// a minute, when a record names a key it does not hold. [Client.Self] is
// the call to make first: it answers what the hub knows of the member (its
// roles, status, quotas and endpoint) once its key and bearer token verify.
//
// # Tokens
//
// Identifiers never leave the member. [Client.Tokenize] canonicalizes them
// (a personnummer's century from Config.Now's date), blinds them, has the
// hub evaluate them obliviously in batches of at most 100, checks the hub's
// proof against its published key, and remembers recent tokens:
//
//	toks, err := c.Tokenize(ctx, protocol.TypePersonalNumber, "19090527+1474")
//
// A malformed identifier gives a [*protocol.IdentifierError], which never
// contains the identifier; a proof that fails gives a [*TokenProofError].
//
// # Flags, suspicions and checks
//
// Writes are signed submissions. [Client.PlaceFlag] carries the consumer's
// consent; [Client.ThawFlag], [Client.ExtendFlag] and [Client.LiftFlag]
// follow the consumer's later requests; [Client.ReportSuspicion] and
// [Client.RetractSuspicion] share police-reported suspicions. Each answer is
// a [WriteResult] with the signed record, verified. [Client.Check] asks the
// hub about up to 100 tokens for a stated purpose:
//
//	res, err := c.Check(ctx, api.PurposeCreditApplication, toks[0])
//	switch res.Results[0].Advice {
//	case api.AdviceVerify: // a protection flag: confirm the applicant with strong authentication
//	case api.AdviceReview: // police-reported suspicions: look closer
//	case api.AdviceNone:
//	}
//
// # Proving a write was logged
//
// Every [WriteResult] carries its exchange-log index. Once a checkpoint
// covers it, [Client.VerifyInclusion] proves that the hub logged the write
// as the member's, under the checkpoint every regulator sees; with a log
// key obtained out of band, [CheckInclusion] does the same checks on
// answers fetched separately.
//
// # Receiving events
//
// A [Receiver] is the http.Handler to mount at the member's webhook URL.
// It verifies each delivery's Standard Webhooks signature (under the
// member's secret, or the hub's webhook key before the secret is known) and
// timestamp, refuses another member's delivery passed on to it, verifies
// the record's signature, skips repeats, and hands the event to a
// callback, typically a replica's Apply:
//
//	rcv, _ := client.NewReceiver(client.ReceiverConfig{Client: c, Handle: rep.Apply})
//	http.Handle("POST /sparr/events", rcv)
//	secret, _, err := c.RegisterEndpoint(ctx, "https://sparr.bank-a.example/sparr/events")
//	rcv.SetSecrets(secret) // and store it for the next start
//
// [Client.Events] reads the feed from a sequence number, [Client.Snapshot]
// everything active; a replica does both for you, and reports the checks
// it answers with [Client.ReportReplicaChecks], so that the hub logs them
// as it logs online checks.
//
// # Acting for a consumer
//
// A member acts for a consumer who authenticated with it, stating how in a
// protocol.ConsumerAuth that it signs with the request: [Client.History]
// (who checked them, their flag, suspicions, disputes),
// [Client.AccessReport] (the hub's signed report, which anyone can check
// with [VerifyAccessReport]) and [Client.OpenDispute]. The member a
// dispute is addressed to answers with [Client.AnswerDispute]. After a
// lift, expiry or erasure a member attests its deletion with
// [Client.AttestErasure] (a replica does it on its own), and the flag's
// origin reads [Client.AttestationStatus]; the operator and regulators
// read [Client.OverdueAttestations].
//
// # The operator and the regulator
//
// The same client serves a member with the operator or regulator role.
// The operator registers and changes members ([Client.AddMember],
// [Client.UpdateMember], [Client.SuspendMember], [Client.ResumeMember],
// [Client.Member], [Client.Members]), watches every webhook endpoint
// ([Client.Endpoints]), erases a subject ([Client.EraseSubject], whose
// subject-erased record is verified) and streams hot backups
// ([Client.Backup]). A regulator reads the audit API ([Client.AuditEntries],
// [Client.AuditStats], [Client.AuditExport]) and the exchange log:
// [Client.Log] is a protocol.LogFetcher for a protocol.LogAuditor that
// holds the log to a key obtained out of band, and [Client.Checkpoint]
// verifies the latest checkpoint with the key the hub publishes:
//
//	reg, _ := client.New(client.Config{HubURL: hubURL, MemberID: "fi", Key: key})
//	auditor := &protocol.LogAuditor{Fetcher: reg.Log(), Key: pinnedLogKey}
//	state, report, err := auditor.Verify(ctx, lastState)
//
// Tools and tests that must send a request exactly as given (a malformed
// body, a wrong content type) use [Client.Raw], which signs the member's
// bearer token as every call does, sends once and returns the answer as
// received; [RawResponse.Problem] reads an error answer as the client
// reads every other.
//
// # Errors and retries
//
// Every error answer of the hub is a [*Problem] (RFC 9457), which matches
// sentinels such as [ErrNotFound], [ErrStateConflict], [ErrInvalidConsent]
// and [ErrRateLimited] with errors.Is. A record that does not verify is a
// [*RecordError], a security failure that carries the record as evidence.
// Requests that fail for a reason that may pass are retried with backoff
// as Config.Retry says, but only where a repeat is safe ([Retry]): reads,
// token evaluations and writes after no answer, 429 (after its
// Retry-After), 502, 503 or 504 (a write is sent again with the same
// signed bytes, which the hub answers as it answered the first time);
// checks, reports of replica checks, suspicion details, outcome reports
// and endpoint changes, which act anew each time, only when the hub
// certainly did not act on them. To
// survive a crash between signing and sending, use [Client.Sign] and
// [Client.Send] and keep the [Submission] in between.
//
// # Verifying without HTTP
//
// As golang.org/x/mod/sumdb's client takes its I/O through ClientOps, the
// verifying parts here take theirs through one-method interfaces: [Keys]
// fetches the hub's key set through a [KeySource], a [Tokenizer] has an
// [Evaluator] evaluate. [*Client] implements both over HTTP; tests and
// tools may supply their own. A [Verifier] checks the hub's answers given
// as bytes (a check's records about the token and flag checked, a write's
// record of the submission, the feed's records of the type announced and
// in order), with typed errors that carry the evidence: [*RecordError] and
// [*AnswerError]. The client fetches each answer and has
// [Client.Verifier] check it.
package client
