package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/keyring"
)

// keyPurposes says what each file of the keys directory is for.
var keyPurposes = map[string]string{
	"token.key":        "OPRF key that turns members' blinded identifiers into identity tokens",
	"log.key":          "signs the exchange log's checkpoints (signer and verifier key)",
	"webhook.key":      "signs webhook deliveries (v1a Ed25519 signature)",
	"operator.jwk":     "the operator's private key, for sparr member and sparr backup --hub",
	"operator.pub.jwk": "the operator's public key, which the hub trusts",
}

func keyPurpose(path string) string {
	base := filepath.Base(path)
	if p, ok := keyPurposes[base]; ok {
		return p
	}
	if strings.HasPrefix(base, "signing-") {
		return "record-signing key (the highest number signs; all stay published)"
	}
	return ""
}

// keysDir is where a data directory keeps its keys.
func keysDir(data string) string { return filepath.Join(data, "keys") }

// dbPath is the hub's data file in a data directory.
func dbPath(data string) string { return filepath.Join(data, "hub.db") }

// lastCheckpointPath is where the hub keeps the last checkpoint of its
// exchange log it signed: beside hub.db, never inside a backup of it, so
// that a restored or truncated hub.db cannot take it back.
func lastCheckpointPath(data string) string { return filepath.Join(data, "last-checkpoint") }

func runInit(_ context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--data DIR [--algorithm EdDSA|ES256] [--log-origin NAME]",
		"Init creates the hub's keys in DIR/keys, each file readable by its owner only.\nIt never overwrites a key: if DIR/keys holds any, it changes nothing.")
	data := fs.String("data", "", "the hub's data `DIR`; keys go to DIR/keys (required)")
	alg := fs.String("algorithm", string(protocol.EdDSA), "`ALG` of the record-signing key: EdDSA or ES256")
	origin := fs.String("log-origin", "", "`NAME` of the exchange log in its checkpoints; permanent, so use the hub's public host name")
	fs.note("log-origin", "<hostname>/sparr-log")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	if *data == "" {
		return usagef("%s: missing --data DIR, the directory for the hub's keys and data", name)
	}
	a, err := protocol.ParseAlgorithm(*alg)
	if err != nil {
		return usagef("%s: --algorithm %q: use EdDSA or ES256", name, *alg)
	}
	if *origin == "" {
		*origin = defaultLogOrigin()
	} else if err := checkLogOrigin(*origin); err != nil {
		return usagef("%s: --log-origin %q: %v", name, *origin, err)
	}
	files, err := initKeys(keysDir(*data), a, *origin)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Created the hub's keys (mode 0600) in %s:\n", keysDir(*data))
	printKeyFiles(e, files)
	fmt.Fprintf(e.stdout, "\nThe operator key is %s.\n", keyring.OperatorKeyPath(keysDir(*data)))
	fmt.Fprintf(e.stdout, "sparr member and sparr backup --hub sign with it (--operator-key). The hub itself needs\nonly operator.pub.jwk: in production, move operator.jwk off the hub host.\n")
	fmt.Fprintf(e.stdout, "\nStart the hub: sparr serve --data %s --tls-cert CERT --tls-key KEY --issuer https://HOST\n", shellQuote(*data))
	return nil
}

// initKeys creates the keys with keyring.Init, saying plainly when keys
// are already there.
func initKeys(dir string, alg protocol.Algorithm, origin string) ([]string, error) {
	files, err := keyring.Init(dir, keyring.Options{Algorithm: alg, LogOrigin: origin})
	if errors.Is(err, keyring.ErrExist) {
		return nil, fmt.Errorf("%v. Nothing was changed: init never overwrites keys. For a new record-signing key run sparr keys rotate; to start afresh, choose another --data", err)
	}
	if err != nil {
		return nil, fmt.Errorf("create keys in %s: %w", dir, err)
	}
	return files, nil
}

func printKeyFiles(e *env, files []string) {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, f := range files {
		fmt.Fprintf(tw, "  %s\t%s\n", f, keyPurpose(f))
	}
	tw.Flush()
}

// defaultLogOrigin is "<hostname>/sparr-log", with what a note key name
// may not hold (white space, '+') left out.
func defaultLogOrigin() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '+' || r == '/' {
			return -1
		}
		return unicode.ToLower(r)
	}, host)
	if host == "" {
		host = "sparr.local"
	}
	return host + "/sparr-log"
}

// checkLogOrigin applies the rules of a signed note's key name.
func checkLogOrigin(s string) error {
	switch {
	case strings.IndexFunc(s, unicode.IsSpace) >= 0:
		return errors.New("no white space allowed; use a name like hub.example/sparr-log")
	case strings.Contains(s, "+"):
		return errors.New("no '+' allowed; use a name like hub.example/sparr-log")
	}
	return nil
}

func runKeysRotate(_ context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--data DIR [--algorithm EdDSA|ES256]",
		"Rotate adds a record-signing key to DIR/keys. The hub signs new records with it\nfrom its next start; the earlier keys stay published in /.well-known/jwks.json,\nso the records they signed still verify.")
	data := fs.String("data", "", "the hub's data `DIR` (required)")
	alg := fs.String("algorithm", string(protocol.EdDSA), "`ALG` of the new key: EdDSA or ES256")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	if *data == "" {
		return usagef("%s: missing --data DIR, the hub's data directory", name)
	}
	a, err := protocol.ParseAlgorithm(*alg)
	if err != nil {
		return usagef("%s: --algorithm %q: use EdDSA or ES256", name, *alg)
	}
	k, path, err := keyring.Rotate(keysDir(*data), a, nil)
	if err != nil {
		return fmt.Errorf("rotate the record-signing key: %w", err)
	}
	fmt.Fprintf(e.stdout, "Added record-signing key %s (%s) in %s.\n", k.KeyID(), k.Algorithm(), path)
	fmt.Fprintf(e.stdout, "It signs new records from the next start of the hub: restart sparr serve.\n")
	fmt.Fprintf(e.stdout, "The earlier keys stay in /.well-known/jwks.json, so records they signed still verify.\n")
	return nil
}
