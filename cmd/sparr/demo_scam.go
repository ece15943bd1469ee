package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// demoMuleAccount is the scammer's account in the scam demo: a Swedbank
// clearing number, which the demo's hub maps to Bank B.
const demoMuleAccount = "8327-9, 123 456 789-0"

// A scamStory is the demo's story of an authorised push-payment fraud:
// Bank A's customer pays a mule account at Bank B, Bank A shares the
// payee, Bank C's customer is warned, and Bank A's recall reaches Bank B.
type scamStory struct {
	*demo
	a, b, c *demoBank

	iban    string
	bank    protocol.BankRef
	payee   protocol.Token
	paidAt  time.Time
	payee1  *client.WriteResult
	recall  *client.WriteResult
	routed  time.Duration
	outcome *client.WriteResult
}

// scamStory tells the scam story, step by step.
func (d *demo) scamStory(ctx context.Context) error {
	s := &scamStory{demo: d, a: d.banks[0], b: d.banks[1], c: d.banks[2]}
	d.printf("Spärr demo (--scam): one hub and %d member banks, all on this machine.\n", d.n)
	d.printf("The hub listens on %s. Bank B holds the accounts of Swedbank's clearing range (SE:800).\n", d.issuer)
	steps := []struct {
		title string
		run   func(context.Context) error
	}{
		{"a 'bank employee' phones Bank A's customer, who pays 40 000 SEK to an account at Bank B", s.pay},
		{"two of Bank A's customers report the account, and every bank receives the payee record", s.report},
		{"Bank C's customer is about to pay the same account, and is warned", s.warn},
		{"Bank A's recall request reaches Bank B, and Bank B alone", s.routeRecall},
		{"Bank B acknowledges and freezes what is left", s.freeze},
		{"what the supervisor sees", s.stats},
	}
	for i, st := range steps {
		if err := st.run(ctx); err != nil {
			return &stepError{step: i + 1, title: st.title, err: err}
		}
	}
	d.printf("\nAll %d steps behaved as described. The temporary data is being removed.\n", len(steps))
	return nil
}

// pay is step 1: the payment, screened by Bank A's replica, which knows
// nothing of the account yet.
func (s *scamStory) pay(ctx context.Context) error {
	s.printf("\nStep 1. A caller posing as %s's fraud team tells its customer to move their savings\n", s.a.name)
	s.printf("  to a \"safe account\": %s. The customer pays 40 000 SEK.\n", demoMuleAccount)
	acct, err := protocol.ParseSwedishAccount(demoMuleAccount)
	if err != nil {
		return err
	}
	var ok bool
	s.iban = acct.IBAN()
	if s.bank, ok = protocol.BankOf(protocol.TypeSwedishAccount, acct.String()); !ok {
		return errors.New("no bank derived from the account")
	}
	toks, err := s.a.client.Tokenize(ctx, protocol.TypeIBAN, s.iban)
	if err != nil {
		return err
	}
	s.payee = toks[0]
	adv := s.a.replica.Check(api.PurposePayment, s.payee)
	s.paidAt = time.Now()
	s.printf("  %s's payment screening (its replica) knows nothing of %s (%s, bank %s): %s.\n", s.a.name, acct, s.iban, s.bank, adv)
	if adv.Advice != api.AdviceNone {
		return fmt.Errorf("the first payment was advised %s", adv)
	}
	return nil
}

// report is step 2: Bank A reports the payee, attesting two customers.
func (s *scamStory) report(ctx context.Context) error {
	s.printf("\nStep 2. The customer, and another of %s's customers tricked the same week, report the fraud.\n", s.a.name)
	sent := time.Now()
	var err error
	s.payee1, err = s.a.client.ReportPayee(ctx, client.ReportPayeeRequest{Payee: s.payee, Customers: 2, Category: protocol.PayeeImpersonation,
		FirstSeen: s.paidAt.Add(-72 * time.Hour), LastSeen: s.paidAt})
	if err != nil {
		return err
	}
	s.printf("  %s shares the account as a token, with its two customers (PSR Art. 83); the hub signs payee record %s.\n", s.a.name, s.payee1.Payee.PayeeID)
	for _, bk := range s.banks {
		if err := s.waitFor(ctx, bk.name+" receiving the payee record", func() bool { _, ok := bk.arrival(s.payee1.Record.ID); return ok }); err != nil {
			return err
		}
		at, _ := bk.arrival(s.payee1.Record.ID)
		s.printf("  %s has it in its replica %s after it was sent.\n", bk.name, at.Sub(sent).Round(time.Microsecond))
	}
	return nil
}

// warn is step 3: Bank C's replica and the hub warn, never decline.
func (s *scamStory) warn(ctx context.Context) error {
	s.printf("\nStep 3. %s's customer gets the same call and is about to pay %s.\n", s.c.name, demoMuleAccount)
	toks, err := s.c.client.Tokenize(ctx, protocol.TypeIBAN, s.iban)
	if err != nil {
		return err
	}
	start := time.Now()
	adv := s.c.replica.Check(api.PurposePayment, toks[0])
	took := time.Since(start)
	if adv.Advice != api.AdviceWarn || adv.Payee == nil {
		return fmt.Errorf("%s's replica advised %s", s.c.name, adv)
	}
	ev := adv.Payee.Event
	s.printf("  %s's replica answers in %s: %s — reported by %d customers at %d bank(s), first %s.\n",
		s.c.name, took.Round(time.Microsecond), adv, ev.Customers, len(ev.Reports), ev.FirstSeen.Time().Format(time.DateOnly))
	res, err := s.c.client.Check(ctx, api.PurposePayment, toks[0])
	if err != nil {
		return err
	}
	if got := res.Results[0].Advice; got != api.AdviceWarn {
		return fmt.Errorf("the hub advised %s", got)
	}
	s.printf("  The hub's online check agrees: %s. %s warns its customer, who does not pay; nothing is declined.\n", api.AdviceWarn, s.c.name)
	return nil
}

// routeRecall is step 4: the recall goes to Bank B alone.
func (s *scamStory) routeRecall(ctx context.Context) error {
	s.printf("\nStep 4. %s asks for its customer's 40 000 SEK back.\n", s.a.name)
	sent := time.Now()
	var err error
	s.recall, err = s.a.client.RequestRecall(ctx, client.RecallRequest{Payee: s.payee, Bank: s.bank,
		Amount: protocol.Money{Minor: 4_000_000, Currency: "SEK"}, PaidAt: s.paidAt, Reference: "a-payment-0042"})
	if err != nil {
		return err
	}
	if s.recall.Recall.To != s.b.id {
		return fmt.Errorf("the recall went to %s", s.recall.Recall.To)
	}
	if err := s.waitFor(ctx, s.b.name+" receiving the recall", func() bool { _, ok := s.b.arrival(s.recall.Record.ID); return ok }); err != nil {
		return err
	}
	at, _ := s.b.arrival(s.recall.Record.ID)
	s.routed = at.Sub(sent)
	s.printf("  The hub routes it by the bank code (%s) to %s, which has it %s after it was sent.\n", s.bank, s.b.name, s.routed.Round(time.Microsecond))
	for _, bk := range s.banks {
		if _, ok := bk.arrival(s.recall.Record.ID); ok && bk != s.b {
			return fmt.Errorf("%s received the recall too", bk.name)
		}
	}
	s.printf("  No other bank receives it.\n")
	return nil
}

// freeze is step 5: Bank B acknowledges and freezes what is left.
func (s *scamStory) freeze(ctx context.Context) error {
	id := s.recall.Recall.RecallID
	ack, err := s.b.client.AcknowledgeRecall(ctx, id)
	if err != nil {
		return err
	}
	left := protocol.Money{Minor: 3_150_000, Currency: "SEK"}
	if demoSkip == nil || !demoSkip(5) {
		if s.outcome, err = s.b.client.ReportRecallOutcome(ctx, id, protocol.RecallFrozen, left); err != nil {
			return err
		}
	}
	if err := s.waitFor(ctx, s.a.name+" hearing of the acknowledgement", func() bool { _, ok := s.a.arrival(ack.Record.ID); return ok }); err != nil {
		return err
	}
	var rc *api.Recall
	err = s.waitFor(ctx, s.a.name+" seeing the money frozen", func() bool {
		rc, err = s.a.client.Recall(ctx, id)
		return err == nil && rc.Status == string(protocol.RecallFrozen) && rc.AcknowledgeMillis != nil && rc.OutcomeMillis != nil
	})
	if err != nil {
		return err
	}
	s.printf("\nStep 5. %s acknowledges the recall %d ms after it was made, and freezes the %s left\n", s.b.name, *rc.AcknowledgeMillis, left)
	s.printf("  in the account %d ms after it; %s has both answers, signed.\n", *rc.OutcomeMillis, s.a.name)
	return nil
}

// stats is step 6: the regulator's count of recalls.
func (s *scamStory) stats(ctx context.Context) error {
	st, err := s.regulator.AuditStats(ctx, client.AuditFilter{})
	if err != nil {
		return err
	}
	pair := s.a.id + ">" + s.b.id
	p := st.Recalls[pair]
	if p == nil || p.Requested != 1 || p.Outcomes != 1 {
		return fmt.Errorf("the stats count %+v for %s", p, pair)
	}
	s.printf("\nStep 6. Finansinspektionen's audit counts, for %s: %d recall requested, %d acknowledged (median %d ms),\n", pair, p.Requested, p.Acknowledged, p.AcknowledgeP50Ms)
	s.printf("  %d outcome (median %d ms); the exchange log holds %d payee-reported and %d recall entries, and no account number.\n",
		p.Outcomes, p.OutcomeP50Ms, st.Actions[string(protocol.LogPayeeReported)],
		st.Actions[string(protocol.LogRecallRequested)]+st.Actions[string(protocol.LogRecallAcknowledged)]+st.Actions[string(protocol.LogRecallOutcome)])
	return nil
}
