// Package api declares, once, every document the hub's HTTP API sends and
// takes: the discovery document, check and write answers, flags and
// suspicions as the hub shows them, the event feed, webhook endpoints,
// members, erasures, log proofs and audit answers. The hub (package server)
// encodes them and the member SDK (package client) decodes them, so the two
// cannot drift apart; docs/openapi.yaml describes the same documents for
// implementers in other languages, and the hub's tests hold every answer to
// it.
//
// What is signed — records, submissions, bearer tokens, tokens, log
// entries, problem documents — is in package protocol, which this package
// builds on. A document here carries signed records as their compact JWS,
// exactly as signed, for the receiver to verify.
//
// # An example
//
// A check of one token, and the hub's answer:
//
//	POST /v1/check
//	{"purpose":"credit-application","tokens":["pnr.1.fbw0…_kQ"]}
//
//	200 OK
//	{"check_id":"0193…","checked_at":"2026-11-21T10:00:01Z",
//	 "results":[{"token":"pnr.1.fbw0…_kQ","advice":"verify",
//	             "flag":{"flag_id":"0193…","kind":"standard","thawed":false,
//	                     "expires_at":"2027-11-21T10:00:00Z","records":["eyJ…"]}}],
//	 "log_index":4711}
//
// [CheckRequest] and [CheckResponse] are those two documents; [Advice] says
// what the answer asks of the member: verify, never decline.
//
// # Conventions
//
// Times are RFC 3339 in UTC; an absent time is left out, never zero. Lists
// the hub answers with are never null. Every answer to a write carries
// log_index, the index of the exchange-log entry that recorded it.
package api
