package plan_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/labels"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/policy"
	"github.com/tagflow/tagflow/pipeline/source"
)

type repoSpec struct {
	version   string // VERSION file; "" = none
	tag       string // tag on HEAD; "" = none
	annotated bool
	branch    string // "" = main
	dirty     bool
}

func makeRepo(t *testing.T, s repoSpec) (*gittest.Repo, string) {
	t.Helper()
	r := gittest.New(t)
	files := map[string]string{"svc/main.go": "package main\n"}
	if s.version != "" {
		files["svc/VERSION"] = s.version
	}
	r.Remote("https://github.com/acme/monorepo.git")
	head := r.Commit("feat: service", files)
	if s.branch != "" {
		r.Checkout(s.branch, true)
	}
	if s.tag != "" {
		r.Tag(s.tag, head, s.annotated)
	}
	if s.dirty {
		r.Write(map[string]string{"svc/main.go": "package main // edited\n"})
	}
	return r, head
}

func TestMake(t *testing.T) {
	cfg := config.Default()
	for _, tc := range []struct {
		name     string
		repo     repoSpec
		req      plan.Request
		version  string
		tags     []string // with SHA standing for the short SHA
		violates []policy.Rule
	}{
		{name: "release on main from VERSION", repo: repoSpec{version: "1.4.2\n"},
			req: plan.Request{Service: "echo", Env: "prod", Release: true}, version: "v1.4.2", tags: []string{"v1.4.2", "env-prod", "SHA"}},
		{name: "release from a lightweight tag", repo: repoSpec{tag: "v2.0.0"},
			req: plan.Request{Service: "echo", Env: "staging", Release: true}, version: "v2.0.0", tags: []string{"v2.0.0", "env-staging", "SHA"}},
		{name: "release from an annotated tag", repo: repoSpec{tag: "v2.0.1", annotated: true},
			req: plan.Request{Service: "echo", Env: "staging", Release: true}, version: "v2.0.1", tags: []string{"v2.0.1", "env-staging", "SHA"}},
		{name: "feature branch", repo: repoSpec{version: "1.4.2", branch: "feat/login"},
			req: plan.Request{Service: "echo", Env: "dev"}, tags: []string{"env-dev", "SHA"}},
		{name: "latest for prod", repo: repoSpec{version: "1.4.2"},
			req: plan.Request{Service: "echo", Env: "prod", Latest: true}, tags: []string{"env-prod", "SHA", "latest"}, violates: []policy.Rule{policy.LatestEnv}},
		{name: "latest for dev", repo: repoSpec{},
			req: plan.Request{Service: "echo", Env: "dev", Latest: true}, tags: []string{"env-dev", "SHA", "latest"}},
		{name: "main release without semver", repo: repoSpec{},
			req: plan.Request{Service: "echo", Env: "prod", Release: true}, tags: []string{"env-prod", "SHA"}, violates: []policy.Rule{policy.ReleaseVersion}},
		{name: "VERSION and tag disagree", repo: repoSpec{version: "1.4.2", tag: "v1.4.3"},
			req: plan.Request{Service: "echo", Env: "prod", Release: true}, version: "v1.4.3", tags: []string{"v1.4.3", "env-prod", "SHA"}, violates: []policy.Rule{policy.VersionMismatch}},
		{name: "VERSION and tag disagree on a feature build: no version, no conflict", repo: repoSpec{version: "1.4.2", tag: "v1.4.3"},
			req: plan.Request{Service: "echo", Env: "dev"}, tags: []string{"env-dev", "SHA"}},
		{name: "dirty release", repo: repoSpec{version: "1.4.2", dirty: true},
			req: plan.Request{Service: "echo", Env: "prod", Release: true}, version: "v1.4.2", tags: []string{"v1.4.2", "env-prod", "SHA"}, violates: []policy.Rule{policy.ReleaseDirty}},
		{name: "dirty feature build is allowed", repo: repoSpec{dirty: true, branch: "wip"},
			req: plan.Request{Service: "echo", Env: "dev"}, tags: []string{"env-dev", "SHA"}},
		{name: "bad env name", repo: repoSpec{},
			req: plan.Request{Service: "echo", Env: "prod-eu"}, tags: []string{"env-prod-eu", "SHA"}, violates: []policy.Rule{policy.EnvName}},
		{name: "unknown env", repo: repoSpec{},
			req: plan.Request{Service: "echo", Env: "qa"}, tags: []string{"env-qa", "SHA"}, violates: []policy.Rule{policy.EnvUnknown}},
		{name: "registry outside the allow-list", repo: repoSpec{},
			req: plan.Request{Service: "echo", Env: "dev", Registry: "quay.io/acme"}, tags: []string{"env-dev", "SHA"}, violates: []policy.Rule{policy.RegistryAllowed}},
		{name: "branch override makes a detached checkout a release branch", repo: repoSpec{version: "1.0.0", branch: "ci-detached"},
			req: plan.Request{Service: "echo", Env: "prod", Release: true, Branch: "main"}, version: "v1.0.0", tags: []string{"v1.0.0", "env-prod", "SHA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, head := makeRepo(t, tc.repo)
			tc.req.Source = filepath.Join(r.Dir, "svc")
			p, err := plan.Make(context.Background(), cfg, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tc.tags)
			for i := range want {
				want[i] = strings.ReplaceAll(want[i], "SHA", head[:7])
			}
			if got := p.Tags.Names(); !slices.Equal(got, want) {
				t.Errorf("tags = %v, want %v", got, want)
			}
			if p.Version != tc.version {
				t.Errorf("version = %q, want %q", p.Version, tc.version)
			}
			var rules []policy.Rule
			for _, v := range p.Violations {
				rules = append(rules, v.Rule)
			}
			if !slices.Equal(rules, tc.violates) {
				t.Errorf("violations = %v, want %v", p.Violations, tc.violates)
			}
			if p.Allowed() != (len(tc.violates) == 0) || (p.Err() == nil) != p.Allowed() {
				t.Errorf("Allowed = %v, Err = %v", p.Allowed(), p.Err())
			}
			for i, img := range p.Images {
				if img != p.Repository+":"+want[i] {
					t.Errorf("image %d = %q, want %s:%s", i, img, p.Repository, want[i])
				}
			}
		})
	}
}

func TestMakeLabels(t *testing.T) {
	r, head := makeRepo(t, repoSpec{version: "1.4.2"})
	cfg, err := config.Parse("tagflow.yaml", []byte("labels:\n  org.example.team: media\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Make(context.Background(), cfg, plan.Request{Source: filepath.Join(r.Dir, "svc"), Service: "echo", Env: "prod", Release: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		labels.Revision:    head,
		labels.Source:      "https://github.com/acme/monorepo",
		labels.Version:     "v1.4.2",
		labels.Created:     r.Time().UTC().Format(time.RFC3339),
		labels.Title:       "echo",
		"org.example.team": "media",
	}
	for k, v := range want {
		if p.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, p.Labels[k], v)
		}
	}
	if len(p.Labels) != len(want) {
		t.Errorf("labels = %v, want exactly %v", p.Labels, want)
	}
}

func TestMakeErrors(t *testing.T) {
	cfg := config.Default()
	empty := gittest.New(t)
	for _, tc := range []struct {
		name string
		req  plan.Request
		is   error
		says string
	}{
		{"no commits", plan.Request{Source: empty.Dir, Service: "echo", Env: "dev"}, source.ErrNoCommits, "no commits"},
		{"not a repository", plan.Request{Source: t.TempDir(), Service: "echo", Env: "dev"}, source.ErrNotRepository, "not inside a git repository"},
		{"bad service", plan.Request{Source: empty.Dir, Service: "Echo Server", Env: "dev"}, plan.ErrInput, `"Echo Server"`},
		{"service with a path", plan.Request{Source: empty.Dir, Service: "../x", Env: "dev"}, plan.ErrInput, `"../x"`},
		{"no source", plan.Request{Service: "echo", Env: "dev"}, plan.ErrInput, "no source directory"},
		{"bad registry", plan.Request{Source: empty.Dir, Service: "echo", Env: "dev", Registry: "https://x"}, plan.ErrInput, "without a scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan.Make(context.Background(), cfg, tc.req)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Make error = %v, want %v saying %q", err, tc.is, tc.says)
			}
		})
	}
}

func TestMakeUsesConfiguredService(t *testing.T) {
	r, head := makeRepo(t, repoSpec{tag: "echo/v3.1.0"})
	cfgFile := filepath.Join(r.Dir, "tagflow.yaml")
	if err := os.WriteFile(cfgFile, []byte("registry: ghcr.io/acme\nservices:\n  - name: echo\n    source: svc\n    tag_prefix: echo/v\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile, true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := plan.Make(context.Background(), cfg, plan.Request{Service: "echo", Env: "staging", Release: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != "v3.1.0" || p.Images[0] != "ghcr.io/acme/echo:v3.1.0" || p.Images[2] != "ghcr.io/acme/echo:"+head[:7] || !p.Allowed() {
		t.Errorf("plan = %s %v %v", p.Version, p.Images, p.Violations)
	}
}

func TestPlanJSON(t *testing.T) {
	r, _ := makeRepo(t, repoSpec{version: "1.4.2"})
	p, err := plan.Make(context.Background(), config.Default(), plan.Request{Source: filepath.Join(r.Dir, "svc"), Service: "echo", Env: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "tags", "images", "labels", "violations", "commit", "allowed"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON %s has no %q", data, k)
		}
	}
	if v, ok := got["violations"].([]any); !ok || len(v) != 0 {
		t.Errorf("violations = %#v, want an empty list", got["violations"])
	}
}

func TestCheckImage(t *testing.T) {
	r, head := makeRepo(t, repoSpec{})
	p, err := plan.Make(context.Background(), config.Default(), plan.Request{Source: filepath.Join(r.Dir, "svc"), Service: "echo", Env: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.CheckImage(map[string]string{labels.Revision: head}); err != nil {
		t.Errorf("matching revision refused: %v", err)
	}
	if err := p.CheckImage(nil); err != nil {
		t.Errorf("unlabelled image refused: %v", err)
	}
	other := strings.Repeat("f", 40)
	err = p.CheckImage(map[string]string{labels.Revision: other})
	if !errors.Is(err, plan.ErrWrongImage) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), head) {
		t.Errorf("CheckImage(other revision) = %v, want ErrWrongImage naming both commits", err)
	}
}
