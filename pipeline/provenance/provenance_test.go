package provenance_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tagflow/tagflow/pipeline/provenance"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
const commit = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"

func statement(t *testing.T) provenance.Statement {
	t.Helper()
	st, err := provenance.New(provenance.Build{Repository: "ghcr.io/acme/echo", Digest: digest, Commit: commit, SourceURL: "https://github.com/acme/echo",
		BuilderID: "https://github.com/acme/echo/actions/runs/1", BuildID: "1", Parameters: map[string]any{"service": "echo"},
		Started: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Finished: time.Date(2026, 1, 1, 0, 1, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func key(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := key(t)
	env, err := provenance.Seal(statement(t), k)
	if err != nil {
		t.Fatal(err)
	}
	st, err := provenance.Open(env, provenance.Expect{Digest: digest, Commit: commit[:7], Key: &k.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	if st.Subject[0].Name != "ghcr.io/acme/echo" || st.Predicate.RunDetails.Builder.ID == "" || st.Predicate.BuildDefinition.BuildType != provenance.BuildType {
		t.Errorf("statement = %+v", st)
	}
	// The payload is the in-toto statement in DSSE's envelope.
	raw, _ := base64.StdEncoding.DecodeString(env.Payload)
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m["_type"] != provenance.StatementType || m["predicateType"] != provenance.PredicateType || env.PayloadType != provenance.PayloadType {
		t.Errorf("envelope = %+v", env)
	}
}

func TestOpenRefuses(t *testing.T) {
	k := key(t)
	env, _ := provenance.Seal(statement(t), k)

	tampered := env
	raw, _ := base64.StdEncoding.DecodeString(env.Payload)
	tampered.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(raw), commit, strings.Repeat("f", 40), 1)))
	if _, err := provenance.Open(tampered, provenance.Expect{Digest: digest, Key: &k.PublicKey}); !errors.Is(err, provenance.ErrSignature) {
		t.Errorf("tampered statement = %v, want ErrSignature", err)
	}
	if _, err := provenance.Open(env, provenance.Expect{Digest: digest, Key: &key(t).PublicKey}); !errors.Is(err, provenance.ErrSignature) {
		t.Errorf("wrong key = %v, want ErrSignature", err)
	}
	other := "sha256:" + strings.Repeat("9", 64)
	if _, err := provenance.Open(env, provenance.Expect{Digest: other, Key: &k.PublicKey}); !errors.Is(err, provenance.ErrSubject) {
		t.Errorf("other digest = %v, want ErrSubject", err)
	}
	if _, err := provenance.Open(env, provenance.Expect{Digest: digest, Commit: "deadbee", Key: &k.PublicKey}); !errors.Is(err, provenance.ErrCommit) {
		t.Errorf("other commit = %v, want ErrCommit", err)
	}
	unsigned, _ := provenance.Seal(statement(t), nil)
	if _, err := provenance.Open(unsigned, provenance.Expect{Digest: digest, Key: &k.PublicKey}); !errors.Is(err, provenance.ErrUnsigned) {
		t.Errorf("unsigned with a key = %v, want ErrUnsigned", err)
	}
	if _, err := provenance.Open(unsigned, provenance.Expect{Digest: digest}); err != nil {
		t.Errorf("unsigned without a key = %v", err)
	}
}

func TestKeysFromPEM(t *testing.T) {
	k := key(t)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	priv, err := provenance.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub, err := provenance.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	if err != nil {
		t.Fatal(err)
	}
	env, _ := provenance.Seal(statement(t), priv)
	if _, err := provenance.Open(env, provenance.Expect{Digest: digest, Key: pub}); err != nil {
		t.Errorf("PEM keys do not round-trip: %v", err)
	}
	if _, err := provenance.ParsePrivateKey([]byte("not pem")); err == nil {
		t.Error("garbage key accepted")
	}
}

func TestNewRefusesBadDigest(t *testing.T) {
	if _, err := provenance.New(provenance.Build{Digest: "md5:abc"}); err == nil {
		t.Error("a non-sha256 digest was accepted")
	}
}
