package provenance

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tagflow/tagflow/pipeline/registry"
)

// ErrNone reports a digest without provenance.
var ErrNone = errors.New("no provenance is attached")

// Attach seals the statement (signed when key is not nil) and attaches it to
// its digest: through the referrers API, or the sha256-<digest> fallback tag.
func Attach(ctx context.Context, c *registry.Client, digest name.Digest, st Statement, key crypto.Signer) (string, error) {
	env, err := Seal(st, key)
	if err != nil {
		return "", err
	}
	data, err := json.Marshal(env)
	if err != nil {
		return "", err
	}
	ref, err := c.Attach(ctx, digest, ArtifactType, data, map[string]string{"predicateType": PredicateType})
	if err != nil {
		return "", err
	}
	// Also where cosign verify-attestation looks: the sha256-<hex>.att tag,
	// each attestation a DSSE envelope layer annotated with its predicate type.
	att := digest.Context().Tag(strings.Replace(digest.DigestStr(), ":", "-", 1) + ".att")
	layer := static.NewLayer(data, types.MediaType(ArtifactType))
	// cosign requires the signature annotation on every layer; for DSSE
	// attestations it is empty, the signature being inside the envelope.
	annotations := map[string]string{"predicateType": PredicateType, "dev.cosignproject.cosign/signature": ""}
	if err := c.AppendLayer(ctx, att, layer, annotations); err != nil {
		return "", err
	}
	return ref, nil
}

// Verify reads the provenance attached to digest and returns the first
// statement that verifies; otherwise the reason the last one did not.
func Verify(ctx context.Context, c *registry.Client, digest name.Digest, want Expect) (*Statement, error) {
	docs, err := c.Attached(ctx, digest, ArtifactType)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("verifying %s: %w", digest, ErrNone)
	}
	want.Digest = digest.DigestStr()
	var last error
	for _, d := range docs {
		var env Envelope
		if err := json.Unmarshal(d, &env); err != nil {
			last = err
			continue
		}
		st, err := Open(env, want)
		if err == nil {
			return st, nil
		}
		last = err
	}
	return nil, fmt.Errorf("verifying %s: %w", digest, last)
}
