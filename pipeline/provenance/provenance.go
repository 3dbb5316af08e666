// Package provenance makes SLSA v1 provenance for the digests tagflow
// releases: an in-toto statement in a DSSE envelope, signed with a key when
// one is given (ECDSA P-256 over the DSSE pre-authentication encoding, as
// cosign signs attestations), and verifies it.
package provenance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Types of the statement and its envelope.
const (
	StatementType = "https://in-toto.io/Statement/v1"
	PredicateType = "https://slsa.dev/provenance/v1"
	PayloadType   = "application/vnd.in-toto+json"
	// ArtifactType is how the envelope is attached to the digest.
	ArtifactType = "application/vnd.dsse.envelope.v1+json"
	// BuildType names tagflow's build in the predicate.
	BuildType = "https://github.com/tagflow/tagflow/release/v1"
)

// Errors callers branch on.
var (
	ErrSubject   = errors.New("the provenance is about another digest")
	ErrCommit    = errors.New("the provenance names another source commit")
	ErrSignature = errors.New("the provenance signature does not verify")
	ErrUnsigned  = errors.New("the provenance is not signed")
)

// Statement is an in-toto v1 statement with an SLSA v1 provenance predicate.
type Statement struct {
	Type          string     `json:"_type"`
	Subject       []Subject  `json:"subject"`
	PredicateType string     `json:"predicateType"`
	Predicate     Provenance `json:"predicate"`
}

// Subject is what the statement is about.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// Provenance is the SLSA v1 predicate.
type Provenance struct {
	BuildDefinition struct {
		BuildType            string               `json:"buildType"`
		ExternalParameters   map[string]any       `json:"externalParameters"`
		ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID string `json:"id"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string    `json:"invocationId,omitempty"`
			StartedOn    time.Time `json:"startedOn"`
			FinishedOn   time.Time `json:"finishedOn"`
		} `json:"metadata"`
	} `json:"runDetails"`
}

// ResourceDescriptor names an input of the build.
type ResourceDescriptor struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

// Build is what one release says about itself.
type Build struct {
	Repository string         // the image repository
	Digest     string         // sha256:…
	Commit     string         // full source commit SHA
	SourceURL  string         // repository URL of the source
	BuilderID  string         // who built it (a CI runner's URL, or tagflow's)
	BuildID    string         // the CI run
	Parameters map[string]any // the inputs that matter: service, env, version, platforms
	Started    time.Time
	Finished   time.Time
}

// New makes the statement of a build.
func New(b Build) (Statement, error) {
	alg, hexDigest, ok := strings.Cut(b.Digest, ":")
	if !ok || alg != "sha256" || len(hexDigest) != 64 {
		return Statement{}, fmt.Errorf("provenance for %q: want a sha256:<64 hex> digest", b.Digest)
	}
	st := Statement{Type: StatementType, PredicateType: PredicateType,
		Subject: []Subject{{Name: b.Repository, Digest: map[string]string{"sha256": hexDigest}}}}
	p := &st.Predicate
	p.BuildDefinition.BuildType = BuildType
	p.BuildDefinition.ExternalParameters = b.Parameters
	uri := b.SourceURL
	if uri == "" {
		uri = "git"
	}
	p.BuildDefinition.ResolvedDependencies = []ResourceDescriptor{{URI: "git+" + uri, Digest: map[string]string{"gitCommit": b.Commit}}}
	p.RunDetails.Builder.ID = b.BuilderID
	p.RunDetails.Metadata.InvocationID = b.BuildID
	p.RunDetails.Metadata.StartedOn, p.RunDetails.Metadata.FinishedOn = b.Started.UTC(), b.Finished.UTC()
	return st, nil
}

// Envelope is a DSSE envelope.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"` // base64
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"` // base64
}

// pae is DSSE's pre-authentication encoding: what is actually signed.
func pae(payloadType string, payload []byte) []byte {
	return []byte(fmt.Sprintf("DSSEv1 %d %s %d %s", len(payloadType), payloadType, len(payload), payload))
}

// Seal wraps the statement in an envelope, signed when key is not nil.
func Seal(st Statement, key crypto.Signer) (Envelope, error) {
	payload, err := json.Marshal(st)
	if err != nil {
		return Envelope{}, err
	}
	env := Envelope{PayloadType: PayloadType, Payload: base64.StdEncoding.EncodeToString(payload), Signatures: []Signature{}}
	if key == nil {
		return env, nil
	}
	sum := sha256.Sum256(pae(PayloadType, payload))
	sig, err := key.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return Envelope{}, fmt.Errorf("signing the provenance: %w", err)
	}
	env.Signatures = append(env.Signatures, Signature{Sig: base64.StdEncoding.EncodeToString(sig)})
	return env, nil
}

// Expect is what a verification insists on.
type Expect struct {
	Digest string           // the subject digest, sha256:…
	Commit string           // the source commit (full or a prefix of 7+); empty: any
	Key    crypto.PublicKey // nil: the signature is not checked (and unsigned passes)
}

// Open verifies an envelope and returns its statement.
func Open(env Envelope, want Expect) (*Statement, error) {
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("reading the provenance payload: %w", err)
	}
	if want.Key != nil {
		if len(env.Signatures) == 0 {
			return nil, ErrUnsigned
		}
		sum := sha256.Sum256(pae(env.PayloadType, payload))
		ok := false
		for _, s := range env.Signatures {
			sig, err := base64.StdEncoding.DecodeString(s.Sig)
			if err == nil && verify(want.Key, sum[:], sig) {
				ok = true
				break
			}
		}
		if !ok {
			return nil, ErrSignature
		}
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("provenance payload type %q: want %s", env.PayloadType, PayloadType)
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("reading the provenance statement: %w", err)
	}
	if st.Type != StatementType || st.PredicateType != PredicateType {
		return nil, fmt.Errorf("statement %s / %s: want %s / %s", st.Type, st.PredicateType, StatementType, PredicateType)
	}
	_, wantHex, _ := strings.Cut(want.Digest, ":")
	found := false
	for _, s := range st.Subject {
		if s.Digest["sha256"] == wantHex && wantHex != "" {
			found = true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: want %s", ErrSubject, want.Digest)
	}
	if want.Commit != "" {
		commit := ""
		for _, d := range st.Predicate.BuildDefinition.ResolvedDependencies {
			if c := d.Digest["gitCommit"]; c != "" {
				commit = c
			}
		}
		if len(want.Commit) < 7 || !strings.HasPrefix(commit, strings.ToLower(want.Commit)) {
			return nil, fmt.Errorf("%w: it says %s, want %s", ErrCommit, commit, want.Commit)
		}
	}
	return &st, nil
}

func verify(pub crypto.PublicKey, sum, sig []byte) bool {
	k, ok := pub.(*ecdsa.PublicKey)
	return ok && ecdsa.VerifyASN1(k, sum, sig)
}

// ParsePrivateKey reads an ECDSA private key from PEM (PKCS#8 or SEC 1).
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("signing key: no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(*ecdsa.PrivateKey); ok {
			return s, nil
		}
		return nil, errors.New("signing key: want an ECDSA key")
	}
	k, err := x509.ParseECPrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return k, nil
}

// ParsePublicKey reads a PEM public key (PKIX), as cosign writes cosign.pub.
func ParsePublicKey(data []byte) (crypto.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("public key: no PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	return k, nil
}
