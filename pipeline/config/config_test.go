package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/policy"
)

func TestDefault(t *testing.T) {
	c := config.Default()
	if c.Registry != config.DefaultRegistry || !slices.Equal(c.Registries.Allowed, []string{config.DefaultRegistry}) {
		t.Errorf("registry = %q allowed %v", c.Registry, c.Registries.Allowed)
	}
	if !slices.Equal(c.Environments, []string{"dev", "staging", "prod"}) {
		t.Errorf("environments = %v", c.Environments)
	}
	if c.GitOps.Path != "apps/{service}/overlays/{env}/values.yaml" || c.GitOps.Keys["image.tag"] != "tag" || len(c.GitOps.Keys) != 1 || c.GitOps.Provider != "none" || c.GitOps.Tag != "version" {
		t.Errorf("gitops = %+v", c.GitOps)
	}
	if c.Policy.TagPattern != policy.DefaultPattern {
		t.Errorf("pattern = %q", c.Policy.TagPattern)
	}
	if c.Version.Source != "tag" || c.Retention.Keep != 10 {
		t.Errorf("version source %q keep %d", c.Version.Source, c.Retention.Keep)
	}
}

func TestLoadFull(t *testing.T) {
	c, err := config.Load("testdata/full.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry != "ghcr.io/acme" || c.Version.Source != "file" || c.Retention.Keep != 20 || c.GitOps.Keys["image.digest"] != "digest" || c.GitOps.Tag != "sha" || c.GitOps.Direct[0] != "dev" {
		t.Errorf("decoded %+v", c)
	}
	s, ok := c.Service("forward-auth")
	if !ok || s.Dockerfile != "build/Dockerfile" || s.Domain != "authentication" || c.TagPrefix(s) != "forward-auth/v" {
		t.Errorf("service forward-auth = %+v, %v", s, ok)
	}
	if got := c.SourceDir(s); got != filepath.Join("testdata", "services", "forward-auth") {
		t.Errorf("SourceDir = %q, want it relative to the config file", got)
	}
	cli, _ := c.Service("config-cli")
	if cli.Dockerfile != "Dockerfile" || c.TagPrefix(cli) != "v" {
		t.Errorf("config-cli defaults = %+v", cli)
	}
	// Two platforms widen the default pattern by exactly their suffixes.
	if !slices.Equal(c.Arches(), []string{"amd64", "arm64"}) || c.Policy.TagPattern != policy.PatternFor([]string{"amd64", "arm64"}) {
		t.Errorf("arches %v pattern %q", c.Arches(), c.Policy.TagPattern)
	}
	r := c.Rules()
	if !r.Pattern.MatchString("v1.0.0-arm64") || r.Pattern.MatchString("v1.0.0-s390x") {
		t.Errorf("rules pattern %s", r.Pattern)
	}
}

func TestLoadMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "tagflow.yaml")
	c, err := config.Load(missing, false)
	if err != nil || c.Registry != config.DefaultRegistry {
		t.Fatalf("Load(missing, implicit) = %v, %v; want the defaults", c, err)
	}
	if _, err := config.Load(missing, true); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing, explicit) error = %v, want not-exist", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error, in order: file:line first
	}{
		{"unknown key", "registry: ghcr.io/acme\nregistrys:\n  allowed: []\n", []string{"t.yaml:2: ", `unknown key "registrys"`}},
		{"unknown nested key", "gitops:\n  repo: x\n  providr: github\n", []string{"t.yaml:3: ", `unknown key "providr"`}},
		{"wrong type", "retention:\n  keep: lots\n", []string{"t.yaml:2: ", `"lots" is not a whole number`}},
		{"list expected", "environments: dev\n", []string{"t.yaml:1: ", "is not a list"}},
		{"syntax", "registry: [unclosed\n", []string{"t.yaml:", "did not find expected"}},
		{"env name", "environments:\n  - dev\n  - pro d\n", []string{"t.yaml:3: environments.1: ", `environment "pro d"`}},
		{"env with hyphen", "environments: [dev, prod-eu]\n", []string{"t.yaml:1: environments.1: ", "does not match the admission pattern"}},
		{"duplicate env", "environments: [dev, dev]\n", []string{"t.yaml:1: environments.1: ", "listed twice"}},
		{"no envs", "environments: []\n", []string{"t.yaml:1: environments: ", "at least one"}},
		{"latest in prod", "latest:\n  environments: [dev, prod]\n", []string{"t.yaml:2: latest.environments.1: ", "production environment"}},
		{"latest unknown env", "latest:\n  environments: [qa]\n", []string{"t.yaml:2: latest.environments.0: ", `"qa" is not one of the environments`}},
		{"unanchored pattern", "policy:\n  tag_pattern: 'v\\d+'\n", []string{"t.yaml:2: policy.tag_pattern: ", "anchored"}},
		{"bad pattern", "policy:\n  tag_pattern: '^(v$'\n", []string{"t.yaml:2: policy.tag_pattern: ", "not a regular expression"}},
		{"registry with scheme", "registry: https://ghcr.io/acme\n", []string{"t.yaml:1: registry: ", "without a scheme"}},
		{"bad allowed registry", "registries:\n  allowed:\n    - ghcr.io/ACME\n", []string{"t.yaml:3: registries.allowed.0: ", "ghcr.io/ACME"}},
		{"version source", "version:\n  source: env\n", []string{"t.yaml:2: version.source: ", `"env" is not tag or file`}},
		{"version file path", "version:\n  file: ../VERSION\n", []string{"t.yaml:2: version.file: ", "not a path"}},
		{"platform", "platforms: [linux]\n", []string{"t.yaml:1: platforms.0: ", "os/arch"}},
		{"reserved label", "labels:\n  org.opencontainers.image.revision: fake\n", []string{"t.yaml:2: labels.org.opencontainers.image.revision: ", "set by tagflow"}},
		{"service name", "services:\n  - name: Echo\n", []string{"t.yaml:2: services.0.name: ", `"Echo"`}},
		{"duplicate service", "services:\n  - name: a\n  - name: a\n", []string{"t.yaml:3: services.1.name: ", "listed twice"}},
		{"absolute source", "services:\n  - name: a\n    source: /etc\n", []string{"t.yaml:3: services.0.source: ", "relative"}},
		{"provider", "gitops:\n  provider: gitlab\n", []string{"t.yaml:2: gitops.provider: ", "github, gitea, none"}},
		{"overlay path", "gitops:\n  path: apps/values.yaml\n", []string{"t.yaml:2: gitops.path: ", "{service} and {env}"}},
		{"keep", "retention:\n  keep: -1\n", []string{"t.yaml:2: retention.keep: ", "at least 1"}},
		{"gitops field", "gitops:\n  keys:\n    image.tag: version\n", []string{"t.yaml:3: gitops.keys.image.tag: ", `"version" is not one of tag, digest`}},
		{"gitops tag", "gitops:\n  tag: latest\n", []string{"t.yaml:2: gitops.tag: ", "version or sha"}},
		{"gitops direct", "gitops:\n  direct: [qa]\n", []string{"t.yaml:2: gitops.direct.0: ", `"qa" is not one of the environments`}},
		{"scan severity", "scan:\n  severity: [SEVERE]\n", []string{"t.yaml:2: scan.severity.0: ", `"SEVERE" is not one of`}},
		{"scan allow date", "scan:\n  allow:\n    - {id: CVE-1, until: soon, reason: r}\n", []string{"t.yaml:3: scan.allow.0.until: ", "YYYY-MM-DD"}},
		{"scan allow reason", "scan:\n  allow:\n    - {id: CVE-1, until: 2027-01-01}\n", []string{"t.yaml:3: scan.allow.0: ", "needs an id and a reason"}},
		{"gitops author", "gitops:\n  author: bot\n", []string{"t.yaml:2: gitops.author: ", "Name <email>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse("t.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tc.yaml, c)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("Parse error %q does not contain %q (in order)", msg, w)
				}
				rest = rest[i+len(w):]
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Errorf("error %T is not a *config.Error", err)
			}
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	_, err := config.Parse("t.yaml", []byte("environments: [dev, 'x y']\nretention:\n  keep: 0\n"))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:1:") || !strings.Contains(err.Error(), "t.yaml:3:") {
		t.Fatalf("error %v should report both line 1 and line 3", err)
	}
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "---\n"} {
		c, err := config.Parse("t.yaml", []byte(doc))
		if err != nil || c.Registry != config.DefaultRegistry {
			t.Errorf("Parse(%q) = %v, %v; want the defaults", doc, c, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(full), "", "registry: x", "environments: [a, b]\nlatest: {environments: [a]}", "policy: {tag_pattern: '^x$'}", "services: [{name: a}]", "platforms: [linux/amd64, linux/arm/v7]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse("f.yaml", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f.yaml") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		// A config that parses must give usable rules and only valid environments.
		r := c.Rules()
		for _, env := range c.Environments {
			if v := r.CheckEnv(env); v != nil {
				t.Fatalf("accepted environment %q violates %s", env, v)
			}
		}
		if len(c.Registries.Allowed) == 0 && c.Registries.Allowed == nil {
			t.Fatal("allow-list left nil")
		}
	})
}

// The documented example must parse and equal the defaults it claims.
func TestExampleDocumentsDefaults(t *testing.T) {
	c, err := config.Load("../../examples/tagflow.yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	d := config.Default()
	if c.Registry != d.Registry || !slices.Equal(c.Environments, d.Environments) || c.Policy.TagPattern != d.Policy.TagPattern ||
		c.GitOps.Path != d.GitOps.Path || c.GitOps.Keys["image.tag"] != d.GitOps.Keys["image.tag"] || c.GitOps.Tag != d.GitOps.Tag || !slices.Equal(c.Scan.Severity, d.Scan.Severity) || c.Retention.Keep != d.Retention.Keep || c.Version != d.Version {
		t.Errorf("examples/tagflow.yaml drifted from the defaults:\n%+v\n%+v", c, d)
	}
	if s, ok := c.Service("echo-server"); !ok || c.SourceDir(s) != filepath.Join("..", "..", "examples", "echo-server") {
		t.Errorf("echo-server source = %q", c.SourceDir(s))
	}
}
