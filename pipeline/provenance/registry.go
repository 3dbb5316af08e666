package provenance

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"

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
	return c.Attach(ctx, digest, ArtifactType, data, map[string]string{"predicateType": PredicateType})
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
