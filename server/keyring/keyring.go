// Package keyring keeps the hub's keys in files under one directory, each
// readable by its owner only:
//
//	signing-0001.jwk …   record-signing keys (private JWK); the highest
//	                     number signs, the others stay published so old
//	                     records still verify
//	token.key            the OPRF key that makes identity tokens
//	log.key              the exchange log's note signing key
//	webhook.key          the Ed25519 key of v1a webhook signatures (whsk_)
//	operator.jwk         the operator's private key, for the sparr CLI;
//	                     move it off the hub host in production
//	operator.pub.jwk     the operator's public key, which the hub trusts
//
// [Init] creates them and never overwrites one; [Rotate] adds a signing key.
package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
)

// Errors returned by the keyring.
var (
	// ErrExist is returned by [Init] when the directory already holds keys.
	ErrExist = errors.New("keys already exist")
	// ErrNoKeys is returned by [Load] for a directory without keys.
	ErrNoKeys = errors.New("no keys")
	// ErrPermissions is returned by [Load] for a key file others can read.
	ErrPermissions = errors.New("key file readable by others")
)

const (
	tokenFile       = "token.key"
	logFile         = "log.key"
	webhookFile     = "webhook.key"
	operatorFile    = "operator.jwk"
	operatorPubFile = "operator.pub.jwk"
	signingPrefix   = "signing-"
	signingSuffix   = ".jwk"
)

// Keys are the hub's keys.
type Keys struct {
	// Signing holds the record-signing keys, oldest first; the last one
	// signs new records.
	Signing []*protocol.SigningKey
	// Token is the OPRF key of the current epoch.
	Token *protocol.TokenKey
	// Log signs checkpoints of the exchange log; LogVerifier is its public
	// verifier key ("<origin>+<hash>+<key>") and LogOrigin the log's name.
	Log         note.Signer
	LogVerifier string
	LogOrigin   string
	// Webhook signs deliveries (v1a).
	Webhook ed25519.PrivateKey
	// Operator is the public key the operator's CLI signs with.
	Operator *protocol.PublicKey
}

// Active returns the key that signs new records.
func (k *Keys) Active() *protocol.SigningKey { return k.Signing[len(k.Signing)-1] }

// JWKS returns the public record-signing keys, newest first.
func (k *Keys) JWKS() *protocol.KeySet {
	pubs := make([]*protocol.PublicKey, 0, len(k.Signing))
	for i := len(k.Signing) - 1; i >= 0; i-- {
		pubs = append(pubs, k.Signing[i].Public())
	}
	ks, _ := protocol.NewKeySet(pubs...) // kids are thumbprints of distinct keys
	return ks
}

// Options choose how [Init] makes keys.
type Options struct {
	// Algorithm of the record-signing key: protocol.EdDSA (default) or
	// protocol.ES256.
	Algorithm protocol.Algorithm
	// LogOrigin names the exchange log in its checkpoints, for example
	// "hub.example/sparr-log". Default "sparr.local/log".
	LogOrigin string
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
}

// Init creates every key in dir (made if missing, mode 0700) with mode
// 0600 files. It refuses, changing nothing, if any key file exists. It
// returns the files it wrote.
func Init(dir string, opts Options) ([]string, error) {
	if opts.Algorithm == "" {
		opts.Algorithm = protocol.EdDSA
	}
	if opts.LogOrigin == "" {
		opts.LogOrigin = "sparr.local/log"
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	existing, err := keyFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("%w in %s (%s); refusing to overwrite them", ErrExist, dir, strings.Join(existing, ", "))
	}

	signing, err := protocol.GenerateSigningKey(opts.Algorithm, opts.Rand)
	if err != nil {
		return nil, err
	}
	signingJWK, err := signing.MarshalPrivateJWK()
	if err != nil {
		return nil, err
	}
	token, err := protocol.GenerateTokenKey(1, opts.Rand)
	if err != nil {
		return nil, err
	}
	tokenData, err := token.MarshalPrivate()
	if err != nil {
		return nil, err
	}
	skey, vkey, err := note.GenerateKey(opts.Rand, opts.LogOrigin)
	if err != nil {
		return nil, fmt.Errorf("log key for origin %q: %w", opts.LogOrigin, err)
	}
	_, webhook, err := ed25519.GenerateKey(opts.Rand)
	if err != nil {
		return nil, err
	}
	operator, err := protocol.GenerateSigningKey(protocol.EdDSA, opts.Rand)
	if err != nil {
		return nil, err
	}
	operatorJWK, err := operator.MarshalPrivateJWK()
	if err != nil {
		return nil, err
	}
	operatorPub, err := json.Marshal(operator.Public())
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		data []byte
	}{
		{signingName(1), signingJWK},
		{tokenFile, tokenData},
		{logFile, []byte(skey + "\n" + vkey + "\n")},
		{webhookFile, []byte(protocol.EncodeWebhookSigningKey(webhook) + "\n")},
		{operatorFile, operatorJWK},
		{operatorPubFile, operatorPub},
	}
	var written []string
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNew(path, f.data); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

// Rotate adds a new record-signing key of the given algorithm, which signs
// from the next start of the hub; the earlier keys stay published.
func Rotate(dir string, alg protocol.Algorithm, rnd io.Reader) (*protocol.SigningKey, string, error) {
	names, err := signingFiles(dir)
	if err != nil {
		return nil, "", err
	}
	if len(names) == 0 {
		return nil, "", fmt.Errorf("%w in %s: run sparr init first", ErrNoKeys, dir)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	if alg == "" {
		alg = protocol.EdDSA
	}
	k, err := protocol.GenerateSigningKey(alg, rnd)
	if err != nil {
		return nil, "", err
	}
	data, err := k.MarshalPrivateJWK()
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, signingName(len(names)+1))
	if err := writeNew(path, data); err != nil {
		return nil, "", err
	}
	return k, path, nil
}

// Load reads every key in dir. A key file that group or others may read is
// refused, as ssh refuses one.
func Load(dir string) (*Keys, error) {
	names, err := signingFiles(dir)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w in %s: run sparr init --data <dir> first", ErrNoKeys, dir)
	}
	k := &Keys{}
	for _, name := range names {
		data, err := readKey(dir, name)
		if err != nil {
			return nil, err
		}
		sk, err := protocol.ParseSigningKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
		k.Signing = append(k.Signing, sk)
	}
	data, err := readKey(dir, tokenFile)
	if err != nil {
		return nil, err
	}
	if k.Token, err = protocol.ParseTokenKey(data); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, tokenFile), err)
	}
	if data, err = readKey(dir, logFile); err != nil {
		return nil, err
	}
	lines := strings.Fields(string(data))
	if len(lines) != 2 {
		return nil, fmt.Errorf("%s: want the signer key and the verifier key on two lines", filepath.Join(dir, logFile))
	}
	if k.Log, err = note.NewSigner(lines[0]); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, logFile), err)
	}
	v, err := note.NewVerifier(lines[1])
	if err != nil || v.Name() != k.Log.Name() || v.KeyHash() != k.Log.KeyHash() {
		return nil, fmt.Errorf("%s: verifier key does not match the signer key", filepath.Join(dir, logFile))
	}
	k.LogVerifier, k.LogOrigin = lines[1], k.Log.Name()
	if data, err = readKey(dir, webhookFile); err != nil {
		return nil, err
	}
	if k.Webhook, err = protocol.ParseWebhookSigningKey(strings.TrimSpace(string(data))); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, webhookFile), err)
	}
	if data, err = readKey(dir, operatorPubFile); err != nil {
		return nil, err
	}
	if k.Operator, err = protocol.ParsePublicKey(data); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, operatorPubFile), err)
	}
	return k, nil
}

// LoadOperator reads the operator's private key from a file (for example
// dir/operator.jwk).
func LoadOperator(path string) (*protocol.SigningKey, error) {
	data, err := readKey(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return nil, err
	}
	k, err := protocol.ParseSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// OperatorKeyPath is where [Init] puts the operator's private key.
func OperatorKeyPath(dir string) string { return filepath.Join(dir, operatorFile) }

// Exists reports whether dir holds any key file.
func Exists(dir string) (bool, error) {
	names, err := keyFiles(dir)
	return len(names) > 0, err
}

func signingName(n int) string { return fmt.Sprintf("%s%04d%s", signingPrefix, n, signingSuffix) }

func signingFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), signingPrefix) && strings.HasSuffix(e.Name(), signingSuffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

func keyFiles(dir string) ([]string, error) {
	names, err := signingFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, n := range []string{tokenFile, logFile, webhookFile, operatorFile, operatorPubFile} {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			names = append(names, n)
		}
	}
	return names, nil
}

func readKey(dir, name string) ([]byte, error) {
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrPermissions, path, fi.Mode().Perm(), path)
	}
	return os.ReadFile(path)
}

// writeNew writes a new file with mode 0600, failing if it exists.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
