package client_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestFlagReasons sends a placement and a lift with reason codes through a
// real hub and finds each code in the signed record, as the placing member
// and a checking member see it.
func TestFlagReasons(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag))
	b := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck))
	toks, err := a.Tokenize(ctx, protocol.TypePersonalNumber, pnr)
	if err != nil {
		t.Fatal(err)
	}

	placed, err := a.PlaceFlag(ctx, client.PlaceFlagRequest{Subject: toks[0], Consent: consent(hub.Now()), Reason: protocol.PlaceLostIDDocument})
	if err != nil {
		t.Fatal(err)
	}
	if got := placed.Record.Event.(protocol.FlagPlaced).Reason; got != protocol.PlaceLostIDDocument {
		t.Errorf("placed record: got reason %q, want %q", got, protocol.PlaceLostIDDocument)
	}
	res, err := b.Check(ctx, api.PurposeCreditApplication, toks[0])
	if err != nil {
		t.Fatal(err)
	}
	if f := res.Results[0].Flag; f == nil || len(f.Records) != 1 {
		t.Fatalf("check: got %+v, want the flag with its one record", res.Results[0])
	} else if got := f.Records[0].Event.(protocol.FlagPlaced).Reason; got != protocol.PlaceLostIDDocument {
		t.Errorf("record in check: got reason %q, want %q", got, protocol.PlaceLostIDDocument)
	}

	// A code outside the set is refused before anything is sent.
	_, err = a.LiftFlagWithReason(ctx, placed.Flag.ID, "moved abroad")
	if !errors.Is(err, protocol.ErrInvalidClaim) {
		t.Errorf("lift with free text as reason: got %v, want ErrInvalidClaim", err)
	}

	lifted, err := a.LiftFlagWithReason(ctx, placed.Flag.ID, protocol.LiftDeceased)
	if err != nil {
		t.Fatal(err)
	}
	if got := lifted.Record.Event.(protocol.FlagLifted).Reason; got != protocol.LiftDeceased {
		t.Errorf("lift record: got reason %q, want %q", got, protocol.LiftDeceased)
	}
}

// TestFlagWithoutReason: the reason is optional, and a record without one
// says nothing.
func TestFlagWithoutReason(t *testing.T) {
	ctx := context.Background()
	hub := hubtest.Start(t, hubtest.Options{})
	a := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag))
	toks, err := a.Tokenize(ctx, protocol.TypePersonalNumber, pnr)
	if err != nil {
		t.Fatal(err)
	}
	placed := place(t, a, hub.Now(), toks[0])
	if got := placed.Record.Event.(protocol.FlagPlaced).Reason; got != "" {
		t.Errorf("placed record: got reason %q, want none", got)
	}
	lifted, err := a.LiftFlag(ctx, placed.Flag.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := lifted.Record.Event.(protocol.FlagLifted).Reason; got != "" {
		t.Errorf("lift record: got reason %q, want none", got)
	}
}
