package promote_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/promote"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

var ctx = context.Background()

const token = "promote-token"

type world struct {
	t    *testing.T
	reg  *registrytest.Registry
	srv  *gittest.Server
	url  string
	deps promote.Deps
	repo name.Repository
}

// newWorld: a registry, a GitOps repository with echo's three overlays, and
// a config where dev and staging take direct commits and prod goes through a
// branch (a pull request with the provider none).
func newWorld(t *testing.T) *world { return newWorldOn(t, registrytest.V3) }

func newWorldOn(t *testing.T, kind registrytest.Kind) *world {
	w := &world{t: t, reg: registrytest.Start(t, kind, registrytest.Options{})}
	w.srv = gittest.NewServer(t, "tagflow", token)
	w.url = w.srv.Init(t, "gitops", overlaySeed(t, w.reg.Host))
	w.configure("none", token, "[dev, staging]")
	return w
}

// overlaySeed is a GitOps work tree with echo's three overlays.
func overlaySeed(t *testing.T, host string) *gittest.Repo {
	seed := gittest.New(t)
	files := map[string]string{}
	for _, env := range []string{"dev", "staging", "prod"} {
		files["apps/echo/overlays/"+env+"/values.yaml"] = "# echo in " + env + "\nimage:\n  repository: " + host + "/acme/echo\n  tag: none\n  digest: none\n"
	}
	seed.Commit("seed", files)
	return seed
}

// configure points the world's deps at its registry and GitOps repository.
func (w *world) configure(provider, tok, direct string) {
	t := w.t
	cfg, err := config.Parse("tagflow.yaml", []byte("registry: "+w.reg.Host+"/acme\ngitops:\n  repo: "+w.url+"\n  provider: "+provider+
		"\n  keys:\n    image.tag: tag\n    image.digest: digest\n  direct: "+direct+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := registry.New(registry.WithRetry(2, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	w.deps = promote.Deps{Config: cfg, Registry: c, GitOps: func(env string) (gitops.Target, error) {
		return gitops.NewTarget(cfg, env, "", "", tok, nil)
	}}
	w.repo, _ = registry.ParseRepository(w.reg.Host + "/acme/echo")
}

// release does what tagflow release does for dev: push with the plan's
// tags, attach the record, deploy to dev. It returns the digest.
func (w *world) release(version, commit string, scanPassed bool) string {
	t := w.t
	img, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	var v = version
	in := tags.Input{Env: "dev", Commit: commit}
	if v != "" {
		in.Version = mustSemver(t, v)
	}
	set, _ := tags.For(in)
	pushed, err := w.deps.Registry.Push(ctx, registry.Artifact{Image: img}, w.repo, set)
	if err != nil {
		t.Fatal(err)
	}
	rec := promote.Metadata{Service: "echo", Env: "dev", Commit: commit, Version: "v" + v, Repository: w.repo.String(), Digest: pushed.Digest,
		Tags: pushed.Tags, References: pushed.References, Created: time.Now(),
		Scan: promote.Scan{Passed: scanPassed, Gate: []string{"HIGH", "CRITICAL"}}}
	if !scanPassed {
		rec.Scan.Failing = []string{"CVE-2022-32149"}
	}
	data, _ := json.Marshal(rec)
	if _, err := w.deps.Registry.Attach(ctx, w.repo.Digest(pushed.Digest), promote.RecordType, data, nil); err != nil {
		t.Fatal(err)
	}
	target, _ := w.deps.GitOps("dev")
	tag, _ := gitops.PickTag(pushed.Tags, "version")
	if _, err := gitops.Open(ctx, target, gitops.Deployment{Service: "echo", Env: "dev", Tags: pushed.Tags, Commit: commit,
		Image: gitops.Image{Repository: w.repo.String(), Tag: tag, Digest: pushed.Digest}}); err != nil {
		t.Fatal(err)
	}
	return pushed.Digest
}

func (w *world) env(env string) string {
	d, err := w.deps.Registry.Resolve(ctx, w.repo.Tag("env-"+env))
	if err != nil {
		w.t.Fatalf("env-%s: %v", env, err)
	}
	return d
}

func (w *world) overlay(ref, env string) string {
	return w.srv.Git(w.t, "gitops", "show", ref+":apps/echo/overlays/"+env+"/values.yaml")
}

// merge fast-forwards main to the prod branch, as a reviewer merging the PR.
func (w *world) merge() {
	w.srv.Git(w.t, "gitops", "update-ref", "refs/heads/main", "refs/heads/tagflow/echo/prod")
}

func TestPromoteAndRollBack(t *testing.T) {
	for _, kind := range registrytest.Kinds {
		t.Run(string(kind), func(t *testing.T) { promoteAndRollBack(t, newWorldOn(t, kind)) })
	}
}

func promoteAndRollBack(t *testing.T, w *world) {
	const shaA, shaB = "aaaaaaa1111111111111111111111111111111111", "bbbbbbb2222222222222222222222222222222222"
	a := w.release("1.0.0", shaA, true)

	p, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"})
	if err != nil {
		t.Fatal(err)
	}
	if w.env("staging") != a || !p.Changed || p.Tag != "v1.0.0" || !strings.Contains(w.overlay("main", "staging"), a) {
		t.Fatalf("dev→staging: %+v, env-staging %s", p, w.env("staging"))
	}
	p, err = promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "staging", To: "prod", SHA: shaA[:7]})
	if err != nil {
		t.Fatal(err)
	}
	if w.env("prod") != a || p.GitOps.Result.Branch != "tagflow/echo/prod" || !strings.Contains(w.overlay("tagflow/echo/prod", "prod"), a) {
		t.Fatalf("staging→prod: %+v", p)
	}
	if strings.Contains(w.overlay("main", "prod"), a) {
		t.Error("prod's overlay changed on main without review")
	}
	// Re-run before the merge: nothing changes.
	if p, err = promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "staging", To: "prod"}); err != nil || p.Changed {
		t.Errorf("re-run = %+v, %v; want no change", p, err)
	}
	w.merge()

	// A second release travels the same way; then prod rolls back to the first.
	b := w.release("1.1.0", shaB, true)
	for _, hop := range [][2]string{{"dev", "staging"}, {"staging", "prod"}} {
		if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: hop[0], To: hop[1]}); err != nil {
			t.Fatalf("%s→%s: %v", hop[0], hop[1], err)
		}
	}
	w.merge()
	if w.env("prod") != b {
		t.Fatalf("env-prod = %s, want %s", w.env("prod"), b)
	}
	cells, err := promote.Status(ctx, w.deps, []string{"echo"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cells {
		if c.RegistryDigest != b || c.OverlayDigest != b || c.Drift != "" || c.Version != "v1.1.0" || c.Commit != shaB {
			t.Errorf("status %s = %+v", c.Env, c)
		}
	}

	rb, err := promote.RollBack(ctx, w.deps, promote.RollbackRequest{Service: "echo", Env: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if rb.From != b || rb.To != a || rb.Tag != "v1.0.0" || w.env("prod") != a || !strings.Contains(w.overlay("tagflow/echo/prod", "prod"), "tag: v1.0.0") {
		t.Fatalf("rollback = %+v", rb)
	}
	// Before the rollback PR merges, registry and GitOps drift, and status says so.
	cells, _ = promote.Status(ctx, w.deps, []string{"echo"}, 3)
	if prod := cells[2]; prod.Env != "prod" || !strings.Contains(prod.Drift, "env-prod is "+a) {
		t.Errorf("status during rollback = %+v", prod)
	}
	// Rolling back to a digest that retention deleted is refused.
	w.merge()
	if err := remote.Delete(w.repo.Digest(b)); err != nil {
		t.Fatal(err)
	}
	if _, err := promote.RollBack(ctx, w.deps, promote.RollbackRequest{Service: "echo", Env: "prod", To: b}); !errors.Is(err, promote.ErrGone) {
		t.Errorf("rollback to a deleted digest = %v, want ErrGone", err)
	}
}

func TestPromoteRefusals(t *testing.T) {
	w := newWorld(t)
	good := w.release("1.0.0", "ccccccc3333333333333333333333333333333333", true)
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "prod"}); !errors.Is(err, promote.ErrOrder) {
		t.Errorf("dev→prod = %v, want ErrOrder", err)
	}
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "staging", To: "dev"}); err == nil || !strings.Contains(err.Error(), "roll back") {
		t.Errorf("staging→dev = %v", err)
	}
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging", SHA: "ddddddd"}); err == nil {
		t.Error("promotion of an unapproved commit went through")
	}
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "prod", SkipOrder: true}); err != nil {
		t.Errorf("dev→prod with SkipOrder = %v", err)
	}

	// The overlay and the env tag disagree: refuse, naming both.
	other := w.release("1.0.1", "eeeeeee5555555555555555555555555555555555", true)
	if _, err := w.deps.Registry.Retag(ctx, w.repo.Digest(good), "env-dev"); err != nil {
		t.Fatal(err)
	}
	_, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"})
	if !errors.Is(err, promote.ErrDisagree) || !strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), other) {
		t.Errorf("disagreement = %v", err)
	}

	// A failed scan: refused, env-staging untouched.
	failed := w.release("1.0.2", "fffffff6666666666666666666666666666666666", false)
	_, err = promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"})
	if !errors.Is(err, promote.ErrUnverified) || !strings.Contains(err.Error(), "CVE-2022-32149") {
		t.Errorf("failed scan = %v", err)
	}
	if d, _ := w.deps.Registry.Resolve(ctx, w.repo.Tag("env-staging")); d == failed {
		t.Error("a failed image reached staging")
	}
}

func TestPromoteRace(t *testing.T) {
	w := newWorld(t)
	first := w.release("1.0.0", "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", true)
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"}); err != nil {
		t.Fatal(err)
	}
	second := w.release("1.0.1", "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", true)
	// Another promotion moves env-staging between our write and our check.
	w.deps.SetBeforeCheck(func() {
		if _, err := w.deps.Registry.Retag(ctx, w.repo.Digest(first), "env-staging"); err != nil {
			t.Error(err)
		}
	})
	_, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"})
	if !errors.Is(err, promote.ErrRace) || !strings.Contains(err.Error(), first) {
		t.Errorf("raced promotion of %s = %v, want ErrRace naming %s", second, err, first)
	}
}
