// Package promote moves tested images between environments: it promotes the
// exact digest an environment runs to the next one, rolls an environment back
// to an earlier digest, and reports what runs where. It never rebuilds: tags
// move by manifest copy, overlays change through GitOps.
package promote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// RecordType is the artifact type of the release record attached to every
// digest tagflow releases: what was built, from which commit, and how its
// scan went. Promotion reads it to know the digest passed verification.
const RecordType = "application/vnd.tagflow.release.v1+json"

// MoveType is the artifact type of the record tagflow attaches to a digest
// right before it points an env tag at it: how the registry webhook tells
// tagflow's moves from others.
const MoveType = "application/vnd.tagflow.move.v1+json"

// Move is a move record.
type Move struct {
	Env    string    `json:"env"`
	Digest string    `json:"digest"`
	By     string    `json:"by"` // promote or rollback
	At     time.Time `json:"at"`
}

// Errors callers branch on.
var (
	ErrOrder       = errors.New("promotion skips an environment")
	ErrDisagree    = errors.New("the registry and the GitOps repository disagree")
	ErrNotApproved = errors.New("not the approved commit's image")
	ErrUnverified  = errors.New("the image did not pass verification")
	ErrRace        = errors.New("the environment tag moved during the update")
	ErrGone        = errors.New("the digest no longer exists in the registry")
	ErrNothing     = errors.New("nothing to do")
)

// Scan is the scan verdict recorded at release time.
type Scan struct {
	Passed  bool           `json:"passed"`
	Skipped string         `json:"skipped,omitempty"` // why there was no scan
	Gate    []string       `json:"gate,omitempty"`
	Counts  map[string]int `json:"counts,omitempty"`
	Failing []string       `json:"failing,omitempty"`
	Summary string         `json:"summary,omitempty"` // Markdown
}

// Metadata is the build-metadata artifact of one release, written as a file
// and attached to the digest.
type Metadata struct {
	BuildID     string            `json:"build_id"`
	Service     string            `json:"service"`
	Env         string            `json:"env"`
	Commit      string            `json:"commit"`
	Version     string            `json:"version,omitempty"`
	Repository  string            `json:"repository"`
	Digest      string            `json:"digest"`
	Tags        []string          `json:"tags"`
	References  []string          `json:"references"`
	Platforms   map[string]string `json:"platforms,omitempty"`
	Scan        Scan              `json:"scan"`
	PullRequest string            `json:"pull_request,omitempty"`
	Created     time.Time         `json:"created"`
}

// Deps are what promotion works with.
type Deps struct {
	Config   *config.Config
	Registry *registry.Client
	// GitOps returns where an environment's deployments are written.
	GitOps func(env string) (gitops.Target, error)

	beforeCheck func() // test seam: runs between moving a tag and checking it
}

func (d Deps) repository(service string) (name.Repository, error) {
	return registry.ParseRepository(d.Config.Registry + "/" + service)
}

// Record reads the newest release record attached to a digest.
func Record(ctx context.Context, c *registry.Client, digest name.Digest) (*Metadata, error) {
	docs, err := c.Attached(ctx, digest, RecordType)
	if err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, nil
	}
	var newest *Metadata
	for _, doc := range docs {
		var m Metadata
		if err := json.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("reading the release record of %s: %w", digest, err)
		}
		if newest == nil || m.Created.After(newest.Created) {
			newest = &m
		}
	}
	return newest, nil
}

// Request asks to promote what From runs into To.
type Request struct {
	Service, From, To string
	SHA               string // the approved commit; default the one in the release record
	SkipOrder         bool   // allow skipping environments in between
}

// Promotion is what a promotion did.
type Promotion struct {
	Service  string          `json:"service"`
	From     string          `json:"from"`
	To       string          `json:"to"`
	Digest   string          `json:"digest"`
	Commit   string          `json:"commit"`
	Tag      string          `json:"tag"` // the immutable tag the overlay got
	Moved    registry.Moved  `json:"moved"`
	GitOps   *gitops.Outcome `json:"gitops,omitempty"`
	Warnings []string        `json:"warnings,omitempty"`
	Changed  bool            `json:"changed"` // false: everything already was so
}

// Promote moves the digest From runs — its env tag and its overlay must
// agree — to To: checks it is the approved commit's image and passed its
// scan, points env-<To> at it by manifest copy, checks nobody moved the tag
// meanwhile, and opens or updates the To overlay's pull request.
func Promote(ctx context.Context, d Deps, r Request) (*Promotion, error) {
	if err := checkOrder(d.Config.Environments, r.From, r.To, r.SkipOrder); err != nil {
		return nil, err
	}
	repo, err := d.repository(r.Service)
	if err != nil {
		return nil, err
	}
	digest, err := d.running(ctx, repo, r.Service, r.From)
	if err != nil {
		return nil, err
	}
	ref := repo.Digest(digest)
	rec, err := Record(ctx, d.Registry, ref)
	if err != nil {
		return nil, err
	}
	p := &Promotion{Service: r.Service, From: r.From, To: r.To, Digest: digest}
	if rec == nil {
		return nil, fmt.Errorf("promoting %s: %w: %s has no release record (release it with tagflow release)", ref, ErrUnverified, digest)
	}
	p.Commit = rec.Commit
	switch {
	case rec.Scan.Skipped != "":
		p.Warnings = append(p.Warnings, fmt.Sprintf("%s was never scanned (%s): promoting it unverified", digest, rec.Scan.Skipped))
	case !rec.Scan.Passed:
		return nil, fmt.Errorf("promoting %s: %w: its scan failed the %s gate (%s)", ref, ErrUnverified, strings.Join(rec.Scan.Gate, ","), strings.Join(rec.Scan.Failing, ", "))
	}
	sha := r.SHA
	if sha == "" {
		sha = rec.Commit
	}
	if len(sha) < tags.ShortLen {
		return nil, fmt.Errorf("promoting %s: sha %q: want at least %d hex characters", ref, sha, tags.ShortLen)
	}
	approved, err := d.Registry.Resolve(ctx, repo.Tag(strings.ToLower(sha[:tags.ShortLen])))
	if err != nil {
		return nil, fmt.Errorf("promoting %s: the approved commit %s has no image: %w", ref, sha, err)
	}
	if approved != digest {
		return nil, fmt.Errorf("promoting %s: %w: %s runs %s, but commit %s is %s", r.Service, ErrNotApproved, r.From, digest, sha[:tags.ShortLen], approved)
	}
	if p.Moved, err = d.move(ctx, ref, r.To, "promote"); err != nil {
		return nil, err
	}
	if p.Tag, err = gitops.PickTag(rec.Tags, d.Config.GitOps.Tag); err != nil {
		return nil, err
	}
	out, err := d.deploy(ctx, r.To, gitops.Deployment{
		Service: r.Service, Env: r.To, Tags: rec.Tags, Commit: rec.Commit, SourceURL: d.Config.SourceURL,
		Image: gitops.Image{Repository: repo.String(), Tag: p.Tag, Digest: digest}, Scan: rec.Scan.Summary,
		Verify: d.Config.GitOps.Verify, BuildID: rec.BuildID,
	}, "")
	p.GitOps = out
	if err != nil {
		return p, err
	}
	p.Changed = p.Moved.Changed || out.Result.Pushed || (out.PR != nil && out.PR.Changed)
	return p, nil
}

// checkOrder allows promotion only to a later environment, and only to the
// next one unless skipping is asked for.
func checkOrder(envs []string, from, to string, skip bool) error {
	i, j := slices.Index(envs, from), slices.Index(envs, to)
	switch {
	case i < 0:
		return fmt.Errorf("promoting from %q: not a configured environment (%s)", from, strings.Join(envs, ", "))
	case j < 0:
		return fmt.Errorf("promoting to %q: not a configured environment (%s)", to, strings.Join(envs, ", "))
	case j <= i:
		return fmt.Errorf("promoting from %s to %s: %s does not come after %s (to go back, roll back)", from, to, to, from)
	case j > i+1 && !skip:
		return fmt.Errorf("promoting from %s to %s: %w %s: promote through it, or pass --skip to skip it on purpose", from, to, ErrOrder, strings.Join(envs[i+1:j], ", "))
	}
	return nil
}

// running returns the digest an environment runs, where its env tag and its
// overlay agree; otherwise an error that names both.
func (d Deps) running(ctx context.Context, repo name.Repository, service, env string) (string, error) {
	tagDigest, err := d.Registry.Resolve(ctx, repo.Tag(tags.EnvPrefix+env))
	if err != nil {
		return "", fmt.Errorf("reading what %s runs: %w", env, err)
	}
	deployed, path, err := d.overlay(ctx, repo, service, env)
	if err != nil {
		return "", err
	}
	if deployed != tagDigest {
		return "", fmt.Errorf("reading what %s runs: %w: %s:env-%s is %s but %s deploys %s", env, ErrDisagree, repo, env, tagDigest, path, deployed)
	}
	return tagDigest, nil
}

// overlay reads the digest an environment's overlay deploys on the base
// branch: its digest key, or its tag resolved in the registry.
func (d Deps) overlay(ctx context.Context, repo name.Repository, service, env string) (string, string, error) {
	t, err := d.GitOps(env)
	if err != nil {
		return "", "", err
	}
	path, err := gitops.OverlayPath(t.PathTmpl, service, env)
	if err != nil {
		return "", "", err
	}
	rev, err := t.Repo.Read(ctx, path)
	if err != nil {
		return "", path, err
	}
	img, err := gitops.Deployed(rev.Content, t.Keys)
	if err != nil {
		return "", path, fmt.Errorf("reading %s: %w", path, err)
	}
	digest, err := d.digestOf(ctx, repo, img)
	return digest, path, err
}

func (d Deps) digestOf(ctx context.Context, repo name.Repository, img gitops.Image) (string, error) {
	if strings.HasPrefix(img.Digest, "sha256:") {
		return img.Digest, nil // anything else there is a placeholder, not a digest
	}
	if img.Tag == "" {
		return "", fmt.Errorf("the overlay names neither a digest nor a tag")
	}
	return d.Registry.Resolve(ctx, repo.Tag(img.Tag))
}

// move points env-<env> at digest and checks, after writing, that it still
// does: two updates at once cannot both move the tag unnoticed.
func (d Deps) move(ctx context.Context, digest name.Digest, env, by string) (registry.Moved, error) {
	current, err := d.Registry.Resolve(ctx, digest.Context().Tag(tags.EnvPrefix+env))
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return registry.Moved{}, err
	}
	if current != digest.DigestStr() {
		rec, _ := json.Marshal(Move{Env: env, Digest: digest.DigestStr(), By: by, At: time.Now().UTC()})
		if _, err := d.Registry.Attach(ctx, digest, MoveType, rec, nil); err != nil {
			return registry.Moved{}, err
		}
	}
	moved, err := d.Registry.Retag(ctx, digest, tags.EnvPrefix+env)
	if err != nil {
		return registry.Moved{}, err
	}
	if d.beforeCheck != nil {
		d.beforeCheck()
	}
	now, err := d.Registry.Resolve(ctx, digest.Context().Tag(tags.EnvPrefix+env))
	if err != nil {
		return moved[0], err
	}
	if now != digest.DigestStr() {
		return moved[0], fmt.Errorf("moving %s:env-%s to %s: %w: it now names %s; look at who else is deploying before trying again", digest.Context(), env, digest.DigestStr(), ErrRace, now)
	}
	return moved[0], nil
}

// deploy writes a deployment into the environment's overlay.
func (d Deps) deploy(ctx context.Context, env string, dep gitops.Deployment, title string) (*gitops.Outcome, error) {
	t, err := d.GitOps(env)
	if err != nil {
		return nil, err
	}
	if title != "" {
		t.Title = title
	}
	return gitops.Open(ctx, t, dep)
}
