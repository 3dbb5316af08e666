// Package plan answers the question everything in tagflow starts from: which
// tags may this image carry, and is that allowed? It reads the source, resolves
// the version, builds the tag set, the image references and the labels, and
// runs the policy.
package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/labels"
	"github.com/tagflow/tagflow/pipeline/policy"
	"github.com/tagflow/tagflow/pipeline/source"
	"github.com/tagflow/tagflow/pipeline/tags"
	"github.com/tagflow/tagflow/pipeline/version"
)

// ErrInput reports a request that cannot be planned as given (a bad service
// name, no source directory): the caller's mistake, not a policy decision.
var ErrInput = errors.New("invalid input")

// Request is what to plan.
type Request struct {
	Source   string // source directory; empty uses the service's configured source
	Service  string // service name: the repository under the registry
	Env      string // target environment
	Release  bool   // a release build: carries vX.Y.Z
	Registry string // host[/namespace]; empty uses the configured registry
	Latest   bool   // ask for latest (policy decides)
	Branch   string // overrides the branch read from git (CI checkouts are often detached)
}

// Plan is the answer.
type Plan struct {
	Service     string
	Env         string
	Release     bool
	Registry    string
	Repository  string // <registry>/<service>
	Dir         string // the source directory planned (the flag, or the service's configured source)
	Source      source.Info
	Version     string // the release tag vX.Y.Z; empty when the build is not a release
	VersionFrom version.From
	VersionRef  string // the file path or tag name the version was read from
	Tags        tags.Set
	Images      []string // <repository>:<tag> for every tag
	Labels      map[string]string
	Violations  []policy.Violation
}

// Allowed reports whether the policy allows the plan.
func (p *Plan) Allowed() bool { return len(p.Violations) == 0 }

// Err is nil for an allowed plan and a *policy.Error otherwise.
func (p *Plan) Err() error {
	if p.Allowed() {
		return nil
	}
	return &policy.Error{Violations: p.Violations}
}

// Make plans one build.
func Make(ctx context.Context, cfg *config.Config, req Request) (*Plan, error) {
	svc, _ := cfg.Service(req.Service)
	registry := req.Registry
	if registry == "" {
		registry = cfg.Registry
	}
	if err := config.CheckRegistry(registry); err != nil {
		return nil, fmt.Errorf("planning: %w: %w", ErrInput, err)
	}
	repo, err := name.NewRepository(registry+"/"+req.Service, name.StrictValidation)
	if err != nil || req.Service == "" || strings.Contains(req.Service, "/") {
		return nil, fmt.Errorf("planning: %w: service %q must be a lowercase repository name (letters, digits, . _ -)", ErrInput, req.Service)
	}
	dir := req.Source
	if dir == "" {
		dir = cfg.SourceDir(svc)
	}
	if dir == "" {
		return nil, fmt.Errorf("planning %s: %w: no source directory: pass --source or configure services[].source", req.Service, ErrInput)
	}

	info, err := source.Read(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("planning %s: reading source %s: %w", req.Service, dir, err)
	}
	if req.Branch != "" {
		info.Branch = req.Branch
	}

	p := &Plan{
		Service:    req.Service,
		Env:        req.Env,
		Release:    req.Release,
		Registry:   registry,
		Repository: repo.String(),
		Dir:        dir,
		Source:     info,
		Violations: []policy.Violation{},
	}

	var conflict string
	if req.Release {
		res, err := version.Resolve(info, dir, version.Options{
			File:      cfg.Version.File,
			TagPrefix: cfg.TagPrefix(svc),
			Prefer:    version.From(cfg.Version.Source),
		})
		var mm *version.MismatchError
		switch {
		case errors.As(err, &mm):
			conflict = mm.Error()
		case err != nil:
			return nil, fmt.Errorf("planning %s: %w", req.Service, err)
		}
		if res.Version != nil {
			p.Version, p.VersionFrom = tags.VersionName(res.Version), res.From
			p.VersionRef = "tag " + res.Tag
			if res.From == version.FromFile {
				p.VersionRef = filepath.Join(dir, cfg.Version.File)
			}
		}
		if p.Tags, err = tags.For(tags.Input{Version: res.Version, Env: req.Env, Commit: info.Commit, Latest: req.Latest, Arches: cfg.Arches()}); err != nil {
			return nil, fmt.Errorf("planning %s: %w", req.Service, err)
		}
	} else if p.Tags, err = tags.For(tags.Input{Env: req.Env, Commit: info.Commit, Latest: req.Latest, Arches: cfg.Arches()}); err != nil {
		return nil, fmt.Errorf("planning %s: %w", req.Service, err)
	}

	for _, t := range p.Tags {
		p.Images = append(p.Images, p.Repository+":"+t.Name)
	}
	src := cfg.SourceURL
	if src == "" {
		src = info.Remote
	}
	p.Labels = labels.For(labels.Input{
		Commit: info.Commit, Source: src, Version: p.Version, Created: info.Time, Title: req.Service, Extra: cfg.Labels,
	})
	p.Violations = append(p.Violations, cfg.Rules().Check(policy.Input{
		Registry:        registry,
		Env:             req.Env,
		Branch:          info.Branch,
		Release:         req.Release,
		Version:         p.Version,
		VersionConflict: conflict,
		Dirty:           info.Dirty,
		Tags:            p.Tags,
	})...)
	return p, nil
}

// ErrWrongImage reports an image whose labels say it was built from another
// commit than the plan's.
var ErrWrongImage = errors.New("image was built from another commit")

// CheckImage compares an image's labels with the plan: an image labelled with
// another revision is refused, since its SHA tag would lie. An image without
// the label is accepted (not every builder sets it).
func (p *Plan) CheckImage(imageLabels map[string]string) error {
	rev, ok := imageLabels[labels.Revision]
	if !ok || rev == p.Source.Commit {
		return nil
	}
	return fmt.Errorf("checking image for %s: %w: its %s label is %s, the source is at %s", p.Service, ErrWrongImage, labels.Revision, rev, p.Source.Commit)
}

// MarshalJSON writes the plan for machines: stable keys, tags as names with
// their kinds beside them, violations always a list.
func (p *Plan) MarshalJSON() ([]byte, error) {
	type wire struct {
		Service     string             `json:"service"`
		Env         string             `json:"env"`
		Release     bool               `json:"release"`
		Registry    string             `json:"registry"`
		Repository  string             `json:"repository"`
		Commit      string             `json:"commit"`
		ShortSHA    string             `json:"short_sha"`
		Branch      string             `json:"branch"`
		Dirty       bool               `json:"dirty"`
		Version     string             `json:"version"`
		VersionFrom string             `json:"version_from,omitempty"`
		Tags        []string           `json:"tags"`
		TagKinds    tags.Set           `json:"tag_kinds"`
		Images      []string           `json:"images"`
		Labels      map[string]string  `json:"labels"`
		Allowed     bool               `json:"allowed"`
		Violations  []policy.Violation `json:"violations"`
	}
	return json.Marshal(wire{
		Service: p.Service, Env: p.Env, Release: p.Release, Registry: p.Registry, Repository: p.Repository,
		Commit: p.Source.Commit, ShortSHA: p.Source.ShortSHA(), Branch: p.Source.Branch, Dirty: p.Source.Dirty,
		Version: p.Version, VersionFrom: string(p.VersionFrom), Tags: p.Tags.Names(), TagKinds: p.Tags,
		Images: p.Images, Labels: p.Labels, Allowed: p.Allowed(), Violations: p.Violations,
	})
}
