package version_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/pipeline/source"
	"github.com/tagflow/tagflow/pipeline/version"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" means an error
	}{
		{"1.4.2", "1.4.2"},
		{"  v1.4.2\n", "1.4.2"},
		{"1.2.3-rc.1", "1.2.3-rc.1"},
		{"1.2.3+build.5", "1.2.3+build.5"},
		{"1.2", ""},
		{"01.2.3", ""},
		{"vv1.2.3", ""},
		{"", ""},
		{"1.2.3 4", ""},
		{"latest", ""},
	} {
		v, err := version.Parse(tc.in)
		if tc.want == "" {
			if !errors.Is(err, version.ErrInvalid) {
				t.Errorf("Parse(%q) = %v, %v; want ErrInvalid", tc.in, v, err)
			}
			continue
		}
		if err != nil || v.String() != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %s", tc.in, v, err, tc.want)
		}
	}
}

func TestFromTagName(t *testing.T) {
	for _, tc := range []struct {
		tag, prefix, want string
	}{
		{"v1.4.2", "v", "1.4.2"},
		{"v1.4.2-rc.1", "v", "1.4.2-rc.1"},
		{"v1.4", "v", ""},        // shorthand is not a release tag
		{"v1.4.2+meta", "v", ""}, // build metadata is not canonical
		{"1.4.2", "v", ""},       // wrong prefix
		{"echo/v2.0.0", "echo/v", "2.0.0"},
		{"echo/v2.0.0", "v", ""},
		{"nightly", "v", ""},
		{"1.4.2", "", "1.4.2"},
	} {
		v := version.FromTagName(tc.tag, tc.prefix)
		got := ""
		if v != nil {
			got = v.String()
		}
		if got != tc.want {
			t.Errorf("FromTagName(%q, %q) = %q, want %q", tc.tag, tc.prefix, got, tc.want)
		}
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name      string
		file      string // VERSION content; "" = no file
		tags      []string
		annotated bool
		prefer    version.From
		want      string // "" = no version
		wantFrom  version.From
		mismatch  bool
	}{
		{name: "file only", file: "1.4.2\n", want: "1.4.2", wantFrom: version.FromFile},
		{name: "lightweight tag only", tags: []string{"v1.4.2"}, want: "1.4.2", wantFrom: version.FromTag},
		{name: "annotated tag only", tags: []string{"v1.4.2"}, annotated: true, want: "1.4.2", wantFrom: version.FromTag},
		{name: "both agree, tag wins by default", file: "v1.4.2", tags: []string{"v1.4.2"}, want: "1.4.2", wantFrom: version.FromTag},
		{name: "both agree, file preferred", file: "1.4.2", tags: []string{"v1.4.2"}, prefer: version.FromFile, want: "1.4.2", wantFrom: version.FromFile},
		{name: "disagree", file: "1.4.2", tags: []string{"v1.4.3"}, want: "1.4.3", wantFrom: version.FromTag, mismatch: true},
		{name: "disagree, file preferred", file: "1.4.2", tags: []string{"v1.4.3"}, prefer: version.FromFile, want: "1.4.2", wantFrom: version.FromFile, mismatch: true},
		{name: "highest of several tags", tags: []string{"v1.4.2", "v1.5.0", "v1.10.0-rc.1", "nightly"}, want: "1.10.0-rc.1", wantFrom: version.FromTag},
		{name: "non-release tags only", tags: []string{"nightly", "v1.2"}},
		{name: "nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := gittest.New(t)
			files := map[string]string{"main.go": "package main\n"}
			if tc.file != "" {
				files["VERSION"] = tc.file
			}
			head := r.Commit("init", files)
			for _, tag := range tc.tags {
				r.Tag(tag, head, tc.annotated)
			}
			info, err := source.Read(context.Background(), r.Dir)
			if err != nil {
				t.Fatal(err)
			}
			res, err := version.Resolve(info, r.Dir, version.Options{TagPrefix: "v", Prefer: tc.prefer})
			var mm *version.MismatchError
			if tc.mismatch != errors.As(err, &mm) {
				t.Fatalf("Resolve error = %v, want mismatch %v", err, tc.mismatch)
			}
			if !tc.mismatch && err != nil {
				t.Fatal(err)
			}
			got := ""
			if res.Version != nil {
				got = res.Version.String()
			}
			if got != tc.want || res.From != tc.wantFrom {
				t.Errorf("Resolve = %q from %q, want %q from %q", got, res.From, tc.want, tc.wantFrom)
			}
			if mm != nil && (!strings.Contains(mm.Error(), "1.4.2") || !strings.Contains(mm.Error(), "v1.4.3")) {
				t.Errorf("mismatch error %q does not name both versions", mm)
			}
		})
	}
}

func TestResolveBadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("one point two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := version.Resolve(source.Info{}, dir, version.Options{})
	if !errors.Is(err, version.ErrInvalid) || !strings.Contains(err.Error(), filepath.Join(dir, "VERSION")) {
		t.Fatalf("Resolve(bad VERSION) = %v, want ErrInvalid naming the file", err)
	}
}

func TestClassify(t *testing.T) {
	for msg, want := range map[string]version.Bump{
		"fix: handle nil":                               version.Patch,
		"fix(api): handle nil":                          version.Patch,
		"feat: add health endpoint":                     version.Minor,
		"Feat(ui): capital type":                        version.Minor,
		"feat!: drop v1 API":                            version.Major,
		"refactor(core)!: rename":                       version.Major,
		"feat: new\n\nBREAKING CHANGE: removed x":       version.Major,
		"fix: y\n\nBREAKING-CHANGE: z":                  version.Major,
		"chore: bump deps":                              version.None,
		"docs: readme":                                  version.None,
		"Merge pull request #4 from feat/x":             version.None,
		"feature: not a conventional type prefix?":      version.None,
		"fix:missing space":                             version.None,
		"feat: x\n\nmentions BREAKING CHANGE: mid-line": version.Minor,
	} {
		if got := version.Classify(msg); got != want {
			t.Errorf("Classify(%q) = %v, want %v", msg, got, want)
		}
	}
}

func TestDecide(t *testing.T) {
	commits := func(msgs ...string) []source.Commit {
		var cs []source.Commit
		for i, m := range msgs {
			cs = append(cs, source.Commit{Hash: strings.Repeat(string(rune('a'+i)), 40), Message: m})
		}
		return cs
	}
	for _, tc := range []struct {
		name    string
		current string
		msgs    []string
		opts    version.NextOptions
		want    string
		reasons int
	}{
		{"fix then feat: feat wins regardless of order", "1.4.2", []string{"fix: a", "feat: b", "chore: c"}, version.NextOptions{}, "1.5.0", 2},
		{"feat then fix", "1.4.2", []string{"feat: b", "fix: a"}, version.NextOptions{}, "1.5.0", 2},
		{"patch", "1.4.2", []string{"fix: a"}, version.NextOptions{}, "1.4.3", 1},
		{"breaking", "1.4.2", []string{"fix: a", "feat!: b"}, version.NextOptions{}, "2.0.0", 2},
		{"breaking on 0.x bumps minor", "0.3.1", []string{"feat!: b"}, version.NextOptions{}, "0.4.0", 1},
		{"breaking on 0.x with MajorOnZero", "0.3.1", []string{"feat!: b"}, version.NextOptions{MajorOnZero: true}, "1.0.0", 1},
		{"nothing release-worthy", "1.4.2", []string{"chore: a", "docs: b"}, version.NextOptions{}, "1.4.2", 0},
		{"no commits", "1.4.2", nil, version.NextOptions{}, "1.4.2", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := version.Decide(semver.MustParse(tc.current), commits(tc.msgs...), tc.opts)
			if d.Next.String() != tc.want || len(d.Reasons) != tc.reasons {
				t.Errorf("Decide(%s, %q) = %s with %d reasons, want %s with %d", tc.current, tc.msgs, d.Next, len(d.Reasons), tc.want, tc.reasons)
			}
		})
	}
}

func TestNextFromRepository(t *testing.T) {
	r := gittest.New(t)
	r.Commit("feat: initial", nil)
	rel := r.Commit("fix: before release", nil)
	r.Tag("v1.4.2", rel, true)
	r.Tag("v2.0.0-rc.1", rel, false) // pre-releases are not the last release
	r.Checkout("topic", true)
	side := r.Commit("feat(api): add /version", nil)
	r.Checkout("main", false)
	r.Commit("docs: readme", nil)
	r.Merge("Merge topic", side)

	repo, err := source.Open(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := version.Next(context.Background(), repo, "v", version.NextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Tag != "v1.4.2" || d.Next.String() != "1.5.0" || d.Commits != 3 {
		t.Fatalf("Next = %s from %s over %d commits, want 1.5.0 from v1.4.2 over 3", d.Next, d.Tag, d.Commits)
	}
	if len(d.Reasons) != 1 || d.Reasons[0].Commit != side || d.Reasons[0].Subject != "feat(api): add /version" {
		t.Errorf("Reasons = %+v, want only the feat commit %s", d.Reasons, side)
	}
}

func TestNextWithoutReleases(t *testing.T) {
	r := gittest.New(t)
	r.Commit("feat: initial", nil)
	r.Commit("fix: typo", nil)
	repo, err := source.Open(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := version.Next(context.Background(), repo, "v", version.NextOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Tag != "" || d.Current.String() != "0.0.0" || d.Next.String() != "0.1.0" {
		t.Errorf("Next = %s from %q (%s), want 0.1.0 from no tag (0.0.0)", d.Next, d.Tag, d.Current)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.4.2", " v1.4.2\n", "1.2.3-rc.1+b", "1.2", "", "v", "99999999999999999999.0.0", "1.2.3-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := version.Parse(s)
		if err != nil {
			return
		}
		// Whatever parses must round-trip and be a release tag when prefixed.
		again, err := version.Parse(v.String())
		if err != nil || !again.Equal(v) {
			t.Fatalf("Parse(%q) = %s, which does not parse back: %v", s, v, err)
		}
		if v.Metadata() == "" && version.FromTagName("v"+v.String(), "v") == nil {
			t.Fatalf("Parse(%q) = %s, but v%s is not a release tag", s, v, v)
		}
	})
}

func FuzzFromTagName(f *testing.F) {
	for _, s := range []string{"v1.4.2", "v1.4", "echo/v1.0.0", "v1.0.0-rc.1", "v01.0.0", "v1.0.0+x"} {
		f.Add(s, "v")
	}
	f.Fuzz(func(t *testing.T, tag, prefix string) {
		v := version.FromTagName(tag, prefix)
		if v == nil {
			return
		}
		if v.Metadata() != "" {
			t.Fatalf("FromTagName(%q) kept build metadata %q", tag, v.Metadata())
		}
		if !strings.HasSuffix(tag, v.String()) {
			t.Fatalf("FromTagName(%q, %q) = %s, not the tag's own text", tag, prefix, v)
		}
	})
}
