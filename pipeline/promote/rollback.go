package promote

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// RollbackRequest asks to put an environment back on an earlier image.
type RollbackRequest struct {
	Service, Env string
	To           string // a commit SHA or sha256 digest; default the previous digest in the overlay's history
}

// Rollback is what a rollback did.
type Rollback struct {
	Service string          `json:"service"`
	Env     string          `json:"env"`
	From    string          `json:"from"` // the digest the overlay deployed
	To      string          `json:"to"`   // the digest it deploys now
	Tag     string          `json:"tag"`
	Moved   registry.Moved  `json:"moved"`
	GitOps  *gitops.Outcome `json:"gitops,omitempty"`
}

// RollBack points env-<env> back at an earlier digest — by default the one
// the overlay deployed before its current one — and proposes the overlay
// that deploys it again. A digest the registry no longer has is refused.
func RollBack(ctx context.Context, d Deps, r RollbackRequest) (*Rollback, error) {
	repo, err := d.repository(r.Service)
	if err != nil {
		return nil, err
	}
	t, err := d.GitOps(r.Env)
	if err != nil {
		return nil, err
	}
	path, err := gitops.OverlayPath(t.PathTmpl, r.Service, r.Env)
	if err != nil {
		return nil, err
	}
	history, err := t.Repo.History(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	current, err := gitops.Deployed(history[0].Content, t.Keys)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	res := &Rollback{Service: r.Service, Env: r.Env}
	if res.From, err = d.digestOf(ctx, repo, current); err != nil {
		return nil, err
	}

	var target gitops.Image
	switch {
	case strings.HasPrefix(r.To, "sha256:"):
		target.Digest = r.To
	case r.To != "":
		if len(r.To) < tags.ShortLen {
			return nil, fmt.Errorf("rolling back to %q: want a sha256 digest or a commit SHA of at least %d characters", r.To, tags.ShortLen)
		}
		target.Tag = strings.ToLower(r.To[:tags.ShortLen])
		if target.Digest, err = d.Registry.Resolve(ctx, repo.Tag(target.Tag)); err != nil {
			return nil, fmt.Errorf("rolling back to commit %s: %w", r.To, err)
		}
	default:
		// The newest earlier overlay that deployed another digest.
		for _, rev := range history[1:] {
			img, err := gitops.Deployed(rev.Content, t.Keys)
			if err != nil {
				continue // an older layout of the file
			}
			if img.Digest == "" {
				// A tag-only overlay: its tag is immutable, so it still names what it named.
				if img.Digest, err = d.digestOf(ctx, repo, img); err != nil {
					if errors.Is(err, registry.ErrNotFound) {
						return nil, fmt.Errorf("rolling back %s: %w: the previous deployment %s (commit %s of the GitOps repository) is no longer in %s", r.Env, ErrGone, img.Tag, rev.Commit[:7], repo)
					}
					return nil, err
				}
			}
			if img.Digest != res.From {
				target = img
				break
			}
		}
		if target.Digest == "" {
			return nil, fmt.Errorf("rolling back %s in %s: %w: %s has no earlier deployment in its history", r.Service, r.Env, ErrNothing, path)
		}
	}
	ref := repo.Digest(target.Digest)
	if _, err := d.Registry.Resolve(ctx, ref); err != nil {
		if errors.Is(err, registry.ErrNotFound) {
			return nil, fmt.Errorf("rolling back %s to %s: %w (retention or a manual delete removed it); pick another with --to", r.Env, target.Digest, ErrGone)
		}
		return nil, err
	}
	res.To = target.Digest
	rec, err := Record(ctx, d.Registry, ref)
	if err != nil {
		return nil, err
	}
	dep := gitops.Deployment{Service: r.Service, Env: r.Env, SourceURL: d.Config.SourceURL, Verify: d.Config.GitOps.Verify,
		Image: gitops.Image{Repository: repo.String(), Digest: target.Digest, Tag: target.Tag}}
	if rec != nil {
		dep.Tags, dep.Commit, dep.BuildID, dep.Scan = rec.Tags, rec.Commit, rec.BuildID, rec.Scan.Summary
		if tag, err := gitops.PickTag(rec.Tags, d.Config.GitOps.Tag); err == nil {
			dep.Image.Tag = tag
		}
	}
	if dep.Image.Tag == "" {
		return nil, fmt.Errorf("rolling back to %s: no immutable tag names it; pass --to with the commit SHA", target.Digest)
	}
	res.Tag = dep.Image.Tag
	if res.Moved, err = d.move(ctx, ref, r.Env, "rollback"); err != nil {
		return res, err
	}
	res.GitOps, err = d.deploy(ctx, r.Env, dep, fmt.Sprintf("rollback(%s): %s → %s", r.Service, r.Env, dep.Image.Tag))
	return res, err
}
