package promote

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// Cell is what one service runs in one environment.
type Cell struct {
	Service        string `json:"service"`
	Env            string `json:"env"`
	RegistryDigest string `json:"registry_digest,omitempty"` // env-<env>; empty when the tag does not exist
	OverlayDigest  string `json:"overlay_digest,omitempty"`  // what the overlay deploys
	OverlayTag     string `json:"overlay_tag,omitempty"`
	Version        string `json:"version,omitempty"` // from the release record
	Commit         string `json:"commit,omitempty"`
	Drift          string `json:"drift,omitempty"` // why registry and overlay disagree; empty when they agree
	// Moved is when the environment got its digest: the move record, or the
	// release, or the overlay commit.
	Moved   time.Time `json:"moved,omitempty"`
	History []Deploy  `json:"history,omitempty"` // the overlay's recent deployments, newest first
}

// Deploy is one past deployment of an environment, from the overlay's history.
type Deploy struct {
	Digest string    `json:"digest"`
	Tag    string    `json:"tag"`
	Commit string    `json:"commit"` // GitOps repository commit
	When   time.Time `json:"when"`
}

// Status reads, for each service and environment, the env tag's digest, the
// overlay's image and the release record, and says where they drift. With
// history > 0 it also reads that many past deployments from the overlay.
func Status(ctx context.Context, d Deps, services []string, history int) ([]Cell, error) {
	overlays, err := d.overlays(ctx, services, history)
	if err != nil {
		return nil, err
	}
	var out []Cell
	for _, svc := range services {
		repo, err := d.repository(svc)
		if err != nil {
			return nil, err
		}
		for _, env := range d.Config.Environments {
			c := Cell{Service: svc, Env: env}
			c.RegistryDigest, err = d.Registry.Resolve(ctx, repo.Tag(tags.EnvPrefix+env))
			if err != nil && !errors.Is(err, registry.ErrNotFound) {
				return nil, err
			}
			t, err := d.GitOps(env)
			if err != nil {
				return nil, err
			}
			path, err := gitops.OverlayPath(t.PathTmpl, svc, env)
			if err != nil {
				return nil, err
			}
			revs := overlays[overlayKey{t.Repo.URL, t.Repo.Base, path}]
			var rev gitops.Revision
			if len(revs) > 0 {
				rev = revs[0]
			}
			switch {
			case len(revs) == 0:
				c.Drift = "no overlay " + path
			default:
				img, err := gitops.Deployed(rev.Content, t.Keys)
				if err != nil {
					c.Drift = err.Error()
					break
				}
				c.OverlayTag = img.Tag
				if c.OverlayDigest, err = d.digestOf(ctx, repo, img); err != nil && !errors.Is(err, registry.ErrNotFound) {
					return nil, err
				}
			}
			digest := c.RegistryDigest
			if digest == "" {
				digest = c.OverlayDigest
			}
			if digest != "" {
				ref := repo.Digest(digest)
				if rec, err := Record(ctx, d.Registry, ref); err == nil && rec != nil {
					c.Version, c.Commit = rec.Version, rec.Commit
					if rec.Env == env {
						c.Moved = rec.Created
					}
				}
				if moves, err := d.Registry.Attached(ctx, ref, MoveType); err == nil {
					for _, m := range moves {
						var mv Move
						if json.Unmarshal(m, &mv) == nil && mv.Env == env && mv.At.After(c.Moved) {
							c.Moved = mv.At
						}
					}
				}
			}
			if c.Moved.IsZero() && len(revs) > 0 && c.OverlayDigest != "" {
				c.Moved = rev.When
			}
			if history > 0 {
				for _, r := range revs {
					img, err := gitops.Deployed(r.Content, t.Keys)
					if err != nil || !strings.HasPrefix(img.Digest, "sha256:") {
						continue
					}
					c.History = append(c.History, Deploy{Digest: img.Digest, Tag: img.Tag, Commit: r.Commit, When: r.When})
				}
			}
			switch {
			case c.Drift != "":
			case c.RegistryDigest == "" && c.OverlayDigest == "":
			case c.RegistryDigest == "":
				c.Drift = "env-" + env + " does not exist but the overlay deploys " + c.OverlayDigest
			case c.OverlayDigest != c.RegistryDigest:
				c.Drift = "env-" + env + " is " + c.RegistryDigest + " but the overlay deploys " + orNone(c.OverlayDigest)
			}
			out = append(out, c)
		}
	}
	return out, nil
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// Deployed returns the digest an environment's overlay deploys for a service.
func Deployed(ctx context.Context, d Deps, service, env string) (string, error) {
	repo, err := d.repository(service)
	if err != nil {
		return "", err
	}
	digest, _, err := d.overlay(ctx, repo, service, env)
	return digest, err
}

type overlayKey struct{ url, base, path string }

// overlays reads the history of every overlay Status needs, one clone per
// GitOps repository rather than one per service and environment.
func (d Deps) overlays(ctx context.Context, services []string, history int) (map[overlayKey][]gitops.Revision, error) {
	type repoKey struct{ url, base string }
	repos := map[repoKey]*gitops.Repo{}
	paths := map[repoKey][]string{}
	for _, env := range d.Config.Environments {
		t, err := d.GitOps(env)
		if err != nil {
			return nil, err
		}
		k := repoKey{t.Repo.URL, t.Repo.Base}
		repos[k] = t.Repo
		for _, svc := range services {
			path, err := gitops.OverlayPath(t.PathTmpl, svc, env)
			if err != nil {
				return nil, err
			}
			paths[k] = append(paths[k], path)
		}
	}
	limit := max(history, 1)
	out := map[overlayKey][]gitops.Revision{}
	for k, r := range repos {
		revs, err := r.Histories(ctx, paths[k], limit)
		if err != nil {
			return nil, err
		}
		for path, rs := range revs {
			out[overlayKey{k.url, k.base, path}] = rs
		}
	}
	return out, nil
}
