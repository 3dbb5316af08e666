package tags_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/tagflow/tagflow/pipeline/tags"
)

const commit = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   tags.Input
		want []string
	}{
		{"release", tags.Input{Version: semver.MustParse("1.4.2"), Env: "prod", Commit: commit}, []string{"v1.4.2", "env-prod", "1a2b3c4"}},
		{"feature build", tags.Input{Env: "dev", Commit: commit}, []string{"env-dev", "1a2b3c4"}},
		{"upper-case commit is lowered", tags.Input{Env: "dev", Commit: "1A2B3C4D"}, []string{"env-dev", "1a2b3c4"}},
		{"latest when asked", tags.Input{Env: "dev", Commit: commit, Latest: true}, []string{"env-dev", "1a2b3c4", "latest"}},
		{"build metadata dropped", tags.Input{Version: semver.MustParse("1.4.2+build.7"), Commit: commit}, []string{"v1.4.2", "1a2b3c4"}},
		{"pre-release kept", tags.Input{Version: semver.MustParse("1.4.2-rc.1"), Commit: commit}, []string{"v1.4.2-rc.1", "1a2b3c4"}},
		{"multi-arch", tags.Input{Version: semver.MustParse("1.4.2"), Env: "staging", Commit: commit, Arches: []string{"amd64", "arm64"}},
			[]string{"v1.4.2", "env-staging", "1a2b3c4", "v1.4.2-amd64", "1a2b3c4-amd64", "v1.4.2-arm64", "1a2b3c4-arm64"}},
		{"multi-arch feature build", tags.Input{Env: "dev", Commit: commit, Arches: []string{"amd64"}}, []string{"env-dev", "1a2b3c4", "1a2b3c4-amd64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tags.For(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Names(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("For(%+v) = %v, want %v", tc.in, got, tc.want)
			}
			for _, tag := range s {
				if p := tags.Parse(tag.Name); p != tag {
					t.Errorf("Parse(%q) = %+v, want %+v (For and Parse disagree)", tag.Name, p, tag)
				}
			}
		})
	}
}

func TestForBadCommit(t *testing.T) {
	for _, c := range []string{"", "1a2b3c", "xyzxyzxyz", "1a2b3c4 "} {
		if _, err := tags.For(tags.Input{Commit: c}); err == nil {
			t.Errorf("For(commit %q) succeeded, want ErrBadCommit", c)
		}
	}
}

func TestSetViews(t *testing.T) {
	s, _ := tags.For(tags.Input{Version: semver.MustParse("2.0.0"), Env: "prod", Commit: commit, Arches: []string{"amd64", "arm64"}})
	if got := s.Plain().Names(); !reflect.DeepEqual(got, []string{"v2.0.0", "env-prod", "1a2b3c4"}) {
		t.Errorf("Plain = %v", got)
	}
	if got := s.ForArch("arm64").Names(); !reflect.DeepEqual(got, []string{"v2.0.0-arm64", "1a2b3c4-arm64"}) {
		t.Errorf("ForArch(arm64) = %v", got)
	}
	if sha, ok := s.Find(tags.SHA); !ok || sha.Name != "1a2b3c4" || !sha.Immutable() {
		t.Errorf("Find(SHA) = %+v, %v", sha, ok)
	}
	if env, _ := s.Find(tags.Env); env.Immutable() {
		t.Error("env tag reported immutable")
	}
}

func TestParse(t *testing.T) {
	for name, want := range map[string]tags.Tag{
		"latest":            {Name: "latest", Kind: tags.Latest},
		"env-prod":          {Name: "env-prod", Kind: tags.Env},
		"env-":              {Name: "env-", Kind: tags.Other},
		"v1.4.2":            {Name: "v1.4.2", Kind: tags.Version},
		"v1.4.2-rc.1":       {Name: "v1.4.2-rc.1", Kind: tags.Version},
		"v1.4.2-arm64":      {Name: "v1.4.2-arm64", Kind: tags.Version, Arch: "arm64"},
		"v1.4.2-rc.1-amd64": {Name: "v1.4.2-rc.1-amd64", Kind: tags.Version, Arch: "amd64"},
		"1a2b3c4":           {Name: "1a2b3c4", Kind: tags.SHA},
		"1a2b3c4-armv7":     {Name: "1a2b3c4-armv7", Kind: tags.SHA, Arch: "armv7"},
		"1A2B3C4":           {Name: "1A2B3C4", Kind: tags.Other},
		"1a2b3c4d":          {Name: "1a2b3c4d", Kind: tags.Other},
		"sha-1a2b3c4":       {Name: "sha-1a2b3c4", Kind: tags.Other},
		"v1.4":              {Name: "v1.4", Kind: tags.Other},
		"main":              {Name: "main", Kind: tags.Other},
	} {
		if got := tags.Parse(name); got != want {
			t.Errorf("Parse(%q) = %+v, want %+v", name, got, want)
		}
	}
}

func TestArchSuffix(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":    "amd64",
		"linux/arm64":    "arm64",
		"linux/arm64/v8": "arm64",
		"linux/arm/v7":   "armv7",
		"linux":          "",
		"linux/AMD64":    "",
		"linux/arm/v7/x": "",
		"/amd64":         "",
	} {
		got, err := tags.ArchSuffix(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("ArchSuffix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"latest", "env-prod", "v1.4.2", "v1.4.2-amd64", "1a2b3c4", "1a2b3c4-arm64", "v1.4", "x-amd64"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tag := tags.Parse(s)
		if tag.Name != s {
			t.Fatalf("Parse(%q).Name = %q", s, tag.Name)
		}
		// A tag classified with an arch suffix must end in it, and its base must
		// classify the same way without it.
		if tag.Arch != "" {
			base := s[:len(s)-len(tag.Arch)-1]
			if b := tags.Parse(base); b.Kind != tag.Kind {
				t.Fatalf("Parse(%q) = %+v but its base %q parses as %+v", s, tag, base, b)
			}
		}
	})
}

func TestSplitSHA(t *testing.T) {
	sha, rest, err := tags.SplitSHA([]string{"v1.4.2", "env-prod", "1a2b3c4", "1a2b3c4-amd64"})
	if err != nil || sha != "1a2b3c4" || strings.Join(rest, ",") != "v1.4.2,env-prod,1a2b3c4-amd64" {
		t.Errorf("SplitSHA = %q %v %v", sha, rest, err)
	}
	if _, _, err := tags.SplitSHA([]string{"v1.4.2", "env-prod"}); err == nil || !strings.Contains(err.Error(), "SHA") {
		t.Errorf("a tag set without the SHA = %v", err)
	}
}
