package policy_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/Masterminds/semver/v3"

	"github.com/tagflow/tagflow/pipeline/policy"
	"github.com/tagflow/tagflow/pipeline/tags"
)

const commit = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"

var rules = policy.Rules{
	Allowed:            []string{"ghcr.io/acme", "localhost:5000", "docker.io/acme"},
	Protected:          []string{"ghcr.io/acme"},
	Environments:       []string{"dev", "staging", "prod"},
	LatestEnvironments: []string{"dev"},
	ReleaseBranches:    []string{"main"},
}

func set(t *testing.T, in tags.Input) tags.Set {
	t.Helper()
	s, err := tags.For(in)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rulesOf(vs []policy.Violation) []policy.Rule {
	var out []policy.Rule
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func TestCheck(t *testing.T) {
	v142 := semver.MustParse("1.4.2")
	for _, tc := range []struct {
		name  string
		rules policy.Rules
		in    policy.Input
		tags  tags.Input
		raw   tags.Set // used instead of tags when set
		want  []policy.Rule
		input string // the Input of the first violation, when want is not empty
	}{
		{name: "release on main", in: policy.Input{Registry: "ghcr.io/acme", Env: "prod", Branch: "main", Release: true, Version: "v1.4.2"},
			tags: tags.Input{Version: v142, Env: "prod", Commit: commit}},
		{name: "feature build to dev", in: policy.Input{Registry: "ghcr.io/acme", Env: "dev", Branch: "feat/x"},
			tags: tags.Input{Env: "dev", Commit: commit}},
		{name: "release without a version", in: policy.Input{Registry: "ghcr.io/acme", Env: "prod", Branch: "main", Release: true},
			tags: tags.Input{Env: "prod", Commit: commit}, want: []policy.Rule{policy.ReleaseVersion}, input: "main"},
		{name: "release with conflicting versions", in: policy.Input{Registry: "ghcr.io/acme", Env: "prod", Branch: "main", Release: true, Version: "v1.4.3", VersionConflict: "VERSION says 1.4.2 but HEAD is tagged v1.4.3"},
			tags: tags.Input{Version: semver.MustParse("1.4.3"), Env: "prod", Commit: commit}, want: []policy.Rule{policy.VersionMismatch}},
		{name: "release from a feature branch", in: policy.Input{Registry: "ghcr.io/acme", Env: "prod", Branch: "feat/x", Release: true, Version: "v1.4.2"},
			tags: tags.Input{Version: v142, Env: "prod", Commit: commit}, want: []policy.Rule{policy.ReleaseBranch}, input: "feat/x"},
		{name: "release from detached HEAD (tag checkout)", in: policy.Input{Registry: "ghcr.io/acme", Env: "prod", Release: true, Version: "v1.4.2"},
			tags: tags.Input{Version: v142, Env: "prod", Commit: commit}},
		{name: "dirty release", in: policy.Input{Registry: "ghcr.io/acme", Env: "prod", Branch: "main", Release: true, Version: "v1.4.2", Dirty: true},
			tags: tags.Input{Version: v142, Env: "prod", Commit: commit}, want: []policy.Rule{policy.ReleaseDirty}},
		{name: "dirty feature build is allowed", in: policy.Input{Registry: "ghcr.io/acme", Env: "dev", Branch: "feat/x", Dirty: true},
			tags: tags.Input{Env: "dev", Commit: commit}},
		{name: "latest for prod", in: policy.Input{Registry: "localhost:5000", Env: "prod", Branch: "main"},
			tags: tags.Input{Env: "prod", Commit: commit, Latest: true}, want: []policy.Rule{policy.LatestEnv}, input: "latest"},
		{name: "latest for prod even when configured", rules: withLatest("dev", "prod"), in: policy.Input{Registry: "localhost:5000", Env: "prod", Branch: "main"},
			tags: tags.Input{Env: "prod", Commit: commit, Latest: true}, want: []policy.Rule{policy.LatestEnv}},
		{name: "latest for staging", in: policy.Input{Registry: "localhost:5000", Env: "staging", Branch: "main"},
			tags: tags.Input{Env: "staging", Commit: commit, Latest: true}, want: []policy.Rule{policy.LatestEnv}},
		{name: "latest for dev on a local registry", in: policy.Input{Registry: "localhost:5000", Env: "dev", Branch: "main"},
			tags: tags.Input{Env: "dev", Commit: commit, Latest: true}},
		{name: "latest to a protected registry", in: policy.Input{Registry: "ghcr.io/acme/team", Env: "dev", Branch: "main"},
			tags: tags.Input{Env: "dev", Commit: commit, Latest: true}, want: []policy.Rule{policy.LatestProtected}, input: "latest"},
		{name: "no sha", in: policy.Input{Registry: "ghcr.io/acme", Env: "dev"},
			raw: tags.Set{{Name: "env-dev", Kind: tags.Env}}, want: []policy.Rule{policy.SHARequired}},
		{name: "sha only per arch is not enough", in: policy.Input{Registry: "ghcr.io/acme", Env: "dev"},
			raw: tags.Set{{Name: "env-dev", Kind: tags.Env}, {Name: "1a2b3c4-amd64", Kind: tags.SHA, Arch: "amd64"}}, want: []policy.Rule{policy.SHARequired, policy.TagPattern}},
		{name: "pre-release outside the default pattern", in: policy.Input{Registry: "ghcr.io/acme", Env: "staging", Branch: "main", Release: true, Version: "v1.4.2-rc.1"},
			tags: tags.Input{Version: semver.MustParse("1.4.2-rc.1"), Env: "staging", Commit: commit}, want: []policy.Rule{policy.TagPattern}, input: "v1.4.2-rc.1"},
		{name: "pre-release inside a widened pattern", rules: withPattern(`^(v\d+\.\d+\.\d+(-rc\.\d+)?|env-\w+|[0-9a-f]{7})$`),
			in:   policy.Input{Registry: "ghcr.io/acme", Env: "staging", Branch: "main", Release: true, Version: "v1.4.2-rc.1"},
			tags: tags.Input{Version: semver.MustParse("1.4.2-rc.1"), Env: "staging", Commit: commit}},
		{name: "registry not allowed", in: policy.Input{Registry: "quay.io/acme", Env: "dev"},
			tags: tags.Input{Env: "dev", Commit: commit}, want: []policy.Rule{policy.RegistryAllowed}, input: "quay.io/acme"},
		{name: "registry prefix must end at a segment", in: policy.Input{Registry: "ghcr.io/acme-evil", Env: "dev"},
			tags: tags.Input{Env: "dev", Commit: commit}, want: []policy.Rule{policy.RegistryAllowed}},
		{name: "registry host is normalised", in: policy.Input{Registry: "index.docker.io/acme", Env: "dev"},
			tags: tags.Input{Env: "dev", Commit: commit}},
		{name: "empty allow-list allows nothing", rules: policy.Rules{Environments: []string{"dev"}}, in: policy.Input{Registry: "localhost:5000", Env: "dev"},
			tags: tags.Input{Env: "dev", Commit: commit}, want: []policy.Rule{policy.RegistryAllowed}},
		{name: "env with a hyphen", rules: withEnvs("dev", "prod-eu"), in: policy.Input{Registry: "ghcr.io/acme", Env: "prod-eu"},
			tags: tags.Input{Env: "prod-eu", Commit: commit}, want: []policy.Rule{policy.EnvName}, input: "prod-eu"},
		{name: "env with a space", in: policy.Input{Registry: "ghcr.io/acme", Env: "pro d"},
			tags: tags.Input{Env: "pro d", Commit: commit}, want: []policy.Rule{policy.EnvName}},
		{name: "env with a slash", in: policy.Input{Registry: "ghcr.io/acme", Env: "a/b"},
			tags: tags.Input{Env: "a/b", Commit: commit}, want: []policy.Rule{policy.EnvName}},
		{name: "env too long for a tag", in: policy.Input{Registry: "ghcr.io/acme", Env: strings.Repeat("e", 130)},
			tags: tags.Input{Env: strings.Repeat("e", 130), Commit: commit}, want: []policy.Rule{policy.EnvName}},
		{name: "env not configured", in: policy.Input{Registry: "ghcr.io/acme", Env: "qa"},
			tags: tags.Input{Env: "qa", Commit: commit}, want: []policy.Rule{policy.EnvUnknown}, input: "qa"},
		{name: "multi-arch with the widened pattern", rules: withPattern(policy.PatternFor([]string{"amd64", "arm64"})),
			in:   policy.Input{Registry: "ghcr.io/acme", Env: "prod", Branch: "main", Release: true, Version: "v1.4.2"},
			tags: tags.Input{Version: v142, Env: "prod", Commit: commit, Arches: []string{"amd64", "arm64"}}},
		{name: "multi-arch suffix not configured", rules: withPattern(policy.PatternFor([]string{"amd64"})),
			in:   policy.Input{Registry: "ghcr.io/acme", Env: "prod", Branch: "main", Release: true, Version: "v1.4.2"},
			tags: tags.Input{Version: v142, Env: "prod", Commit: commit, Arches: []string{"amd64", "arm64"}},
			want: []policy.Rule{policy.TagPattern, policy.TagPattern}, input: "v1.4.2-arm64"},
		{name: "several at once, stable order", in: policy.Input{Registry: "quay.io/x", Env: "prod", Branch: "dev", Release: true},
			tags: tags.Input{Env: "prod", Commit: commit, Latest: true},
			want: []policy.Rule{policy.ReleaseVersion, policy.ReleaseBranch, policy.RegistryAllowed, policy.LatestEnv}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rules
			if tc.rules.Environments != nil || tc.rules.Pattern != nil {
				r = tc.rules
			}
			in := tc.in
			in.Tags = tc.raw
			if in.Tags == nil {
				in.Tags = set(t, tc.tags)
			}
			got := r.Check(in)
			if !slices.Equal(rulesOf(got), tc.want) {
				t.Fatalf("Check(%s) = %v, want rules %v", tc.name, got, tc.want)
			}
			if len(got) > 0 && tc.input != "" && got[0].Input != tc.input {
				t.Errorf("violation input = %q, want %q", got[0].Input, tc.input)
			}
			for _, v := range got {
				if v.Input != "" && !strings.Contains(v.Message, v.Input) && v.Rule != policy.SHARequired {
					t.Errorf("message %q does not name its input %q", v.Message, v.Input)
				}
			}
		})
	}
}

func withLatest(envs ...string) policy.Rules {
	r := rules
	r.LatestEnvironments = envs
	return r
}

func withPattern(p string) policy.Rules {
	r := rules
	r.Pattern = regexp.MustCompile(p)
	return r
}

func withEnvs(envs ...string) policy.Rules {
	r := rules
	r.Environments = envs
	return r
}

func TestPatternFor(t *testing.T) {
	p := regexp.MustCompile(policy.PatternFor([]string{"amd64", "arm64"}))
	for tag, want := range map[string]bool{
		"v1.4.2": true, "v1.4.2-amd64": true, "v1.4.2-arm64": true, "1a2b3c4": true, "1a2b3c4-arm64": true, "env-prod": true,
		"v1.4.2-s390x": false, "v1.4.2-amd64-arm64": false, "env-prod-amd64": false, "latest": false, "1a2b3c4-": false, "v1.4.2-rc.1": false,
	} {
		if got := p.MatchString(tag); got != want {
			t.Errorf("PatternFor(amd64,arm64) matches %q = %v, want %v", tag, got, want)
		}
	}
	if policy.PatternFor(nil) != policy.DefaultPattern {
		t.Error("PatternFor(nil) is not the default pattern")
	}
}

func TestErrorListsViolations(t *testing.T) {
	err := &policy.Error{Violations: []policy.Violation{{Rule: policy.LatestEnv, Input: "latest", Message: "latest requested for prod"}}}
	if !strings.Contains(err.Error(), "[latest-env] latest requested for prod") {
		t.Errorf("Error() = %q", err)
	}
}

// FuzzEmittedTags checks the promise the admission policy rests on: whatever
// tags tagflow emits either match the configured pattern or are reported.
func FuzzEmittedTags(f *testing.F) {
	f.Add("1.4.2", "prod", commit, false, "amd64")
	f.Add("", "dev", commit, true, "")
	f.Add("1.0.0-rc.1", "staging", "ABCDEF0123", false, "arm64")
	f.Add("0.0.1", "prod-eu", commit, false, "")
	f.Add("2.0.0", "x y", commit, true, "s390x")
	f.Fuzz(func(t *testing.T, ver, env, sha string, latest bool, arch string) {
		in := tags.Input{Env: env, Commit: sha, Latest: latest}
		if v, err := semver.StrictNewVersion(ver); err == nil {
			in.Version = v
		}
		if arch != "" {
			in.Arches = []string{arch}
		}
		s, err := tags.For(in)
		if err != nil {
			return
		}
		r := rules
		r.Pattern = regexp.MustCompile(policy.PatternFor([]string{"amd64", "arm64"}))
		vs := r.Check(policy.Input{Registry: "ghcr.io/acme", Env: env, Branch: "main", Tags: s})
		flagged := map[string]bool{}
		for _, v := range vs {
			flagged[v.Input] = true
			if !utf8.ValidString(v.Message) && utf8.ValidString(v.Input) {
				t.Fatalf("violation message is not valid UTF-8: %q", v.Message)
			}
		}
		for _, tag := range s {
			if tag.Kind == tags.Latest {
				continue // latest has its own rules
			}
			ok := r.Pattern.MatchString(tag.Name)
			if tag.Kind == tags.Env && tag.Name == tags.EnvPrefix+env {
				if !ok && !flagged[env] {
					t.Fatalf("env tag %q is outside the pattern and env %q was not flagged: %v", tag.Name, env, vs)
				}
				continue
			}
			if !ok && !flagged[tag.Name] {
				t.Fatalf("emitted tag %q is outside the pattern and not flagged: %v", tag.Name, vs)
			}
		}
	})
}
