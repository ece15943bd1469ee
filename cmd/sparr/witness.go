package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server"
)

// witnessesValue is sparr serve's --witness: each value "URL KEY", the
// witness's tlog-witness URL prefix and its note verifier key, or several
// separated by commas (as SPARR_WITNESS holds them).
type witnessesValue []server.Witness

var _ flag.Value = (*witnessesValue)(nil)

func (v *witnessesValue) String() string {
	if v == nil {
		return ""
	}
	parts := make([]string, len(*v))
	for i, w := range *v {
		parts[i] = w.URL + " " + w.Key
	}
	return strings.Join(parts, ",")
}

func (v *witnessesValue) Set(s string) error {
	for one := range strings.SplitSeq(s, ",") {
		fields := strings.Fields(one)
		if len(fields) != 2 {
			return fmt.Errorf("%q: want the witness's URL and its key, separated by a space, as in \"https://witness.example/ witness.example+1234abcd+BA…\"", strings.TrimSpace(one))
		}
		if !strings.HasPrefix(fields[0], "https://") && !strings.HasPrefix(fields[0], "http://") {
			return fmt.Errorf("%q: the witness's URL comes first, then its key", strings.TrimSpace(one))
		}
		if _, err := protocol.NewWitnessVerifier(fields[1]); err != nil {
			return err
		}
		*v = append(*v, server.Witness{URL: fields[0], Key: fields[1]})
	}
	return nil
}

// witnessKeysValue is sparr log verify's --witness: a witness's note
// verifier key, or a file holding one; repeatable, or several separated by
// commas.
type witnessKeysValue []note.Verifier

var _ flag.Value = (*witnessKeysValue)(nil)

func (v *witnessKeysValue) String() string {
	if v == nil {
		return ""
	}
	parts := make([]string, len(*v))
	for i, w := range *v {
		parts[i] = w.Name()
	}
	return strings.Join(parts, ",")
}

func (v *witnessKeysValue) Set(s string) error {
	for one := range strings.SplitSeq(s, ",") {
		one = strings.TrimSpace(one)
		if b, err := os.ReadFile(one); err == nil {
			one = strings.TrimSpace(string(b))
		}
		w, err := protocol.NewWitnessVerifier(one)
		if err != nil {
			return err
		}
		for _, have := range *v {
			if have.Name() == w.Name() && have.KeyHash() == w.KeyHash() {
				return fmt.Errorf("witness %s given twice", w.Name())
			}
		}
		*v = append(*v, w)
	}
	return nil
}
