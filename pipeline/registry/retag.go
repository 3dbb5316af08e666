package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tagflow/tagflow/pipeline/tags"
)

// Moved is what happened to one tag.
type Moved struct {
	Tag     string `json:"tag"`     // repo:tag
	From    string `json:"from"`    // the digest it named before; empty when new
	To      string `json:"to"`      // the digest it names now
	Changed bool   `json:"changed"` // false when it already named To
}

// Retag points tags at an existing digest by copying its manifest byte for
// byte: the digest stays the same and no blob moves. Immutable tags (version
// and SHA) may be created but never moved; a tag already at the digest is
// left alone. Requests: one GET of the manifest, then a HEAD and at most one
// PUT per tag.
func (c *Client) Retag(ctx context.Context, src name.Digest, tagNames ...string) ([]Moved, error) {
	repo := src.Context()
	opts, err := c.remote(ctx, repo, scopePush)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return nil, classify(fmt.Sprintf("reading %s", src), err)
	}
	if desc.Digest.String() != src.DigestStr() {
		return nil, fmt.Errorf("reading %s: the registry served digest %s", src, desc.Digest)
	}
	var out []Moved
	for _, t := range tagNames {
		ref, err := name.NewTag(repo.String()+":"+t, name.StrictValidation)
		if err != nil {
			return out, fmt.Errorf("tagging %s: %w", src, err)
		}
		cur, err := c.head(ctx, ref, opts)
		if err != nil {
			return out, err
		}
		m := Moved{Tag: ref.String(), From: cur, To: src.DigestStr()}
		switch {
		case cur == m.To:
		case cur != "" && tags.Parse(t).Immutable():
			return out, &ImmutableError{Ref: ref.String(), Current: cur, Want: m.To}
		default:
			if err := remote.Put(ref, desc, opts...); err != nil {
				return out, classify(fmt.Sprintf("tagging %s as %s", src, ref), err)
			}
			m.Changed = true
		}
		out = append(out, m)
	}
	return out, nil
}

// Resolve returns the digest a tag or digest reference names.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (string, error) {
	opts, err := c.remote(ctx, ref.Context(), scopePull)
	if err != nil {
		return "", err
	}
	d, err := c.head(ctx, ref, opts)
	if err != nil {
		return "", err
	}
	if d == "" {
		return "", fmt.Errorf("resolving %s: %w", ref, ErrNotFound)
	}
	return d, nil
}

// Verification compares an environment's tag with an approved SHA tag.
type Verification struct {
	EnvRef    string `json:"env_ref"`
	EnvDigest string `json:"env_digest"` // empty when the env tag does not exist
	SHARef    string `json:"sha_ref"`
	SHADigest string `json:"sha_digest"`
	Match     bool   `json:"match"`
}

// Verify checks that env-<env> names the same digest as the approved commit's
// SHA tag: the release checklist's "prod runs what was approved".
func (c *Client) Verify(ctx context.Context, repo name.Repository, env, sha string) (*Verification, error) {
	if len(sha) < tags.ShortLen {
		return nil, fmt.Errorf("verifying %s: sha %q: want at least %d hex characters", repo, sha, tags.ShortLen)
	}
	set, err := tags.For(tags.Input{Env: env, Commit: sha})
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", repo, err)
	}
	envTag, _ := set.Find(tags.Env)
	shaTag, _ := set.Find(tags.SHA)
	v := &Verification{EnvRef: repo.Tag(envTag.Name).String(), SHARef: repo.Tag(shaTag.Name).String()}
	if v.SHADigest, err = c.Resolve(ctx, repo.Tag(shaTag.Name)); err != nil {
		return nil, fmt.Errorf("verifying %s: the approved commit has no image: %w", repo, err)
	}
	v.EnvDigest, err = c.Resolve(ctx, repo.Tag(envTag.Name))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("verifying %s: %w", repo, err)
	}
	v.Match = v.EnvDigest == v.SHADigest
	return v, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// Image reads one platform's image of a reference (a base image, say).
func (c *Client) Image(ctx context.Context, ref name.Reference, p v1.Platform) (v1.Image, error) {
	opts, err := c.remote(ctx, ref.Context(), scopePull)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(ref, append(opts, remote.WithPlatform(p))...)
	if err != nil {
		return nil, classify(fmt.Sprintf("reading %s for %s", ref, p), err)
	}
	return img, nil
}
