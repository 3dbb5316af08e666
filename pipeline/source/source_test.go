package source_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/pipeline/source"
)

func TestReadNoCommits(t *testing.T) {
	r := gittest.New(t)
	_, err := source.Read(context.Background(), r.Dir)
	if !errors.Is(err, source.ErrNoCommits) {
		t.Fatalf("Read(empty repo) error = %v, want ErrNoCommits", err)
	}
}

func TestReadNotRepository(t *testing.T) {
	_, err := source.Read(context.Background(), t.TempDir())
	if !errors.Is(err, source.ErrNotRepository) {
		t.Fatalf("Read(plain dir) error = %v, want ErrNotRepository", err)
	}
}

func TestReadHead(t *testing.T) {
	r := gittest.New(t)
	first := r.Commit("feat: first", map[string]string{"svc/main.go": "package main\n"})
	head := r.Commit("fix: second", map[string]string{"svc/VERSION": "1.0.0\n"})
	r.Tag("v0.9.0", first, false)
	r.Tag("v1.0.0", head, true)   // annotated: must be peeled to the commit
	r.Tag("nightly", head, false) // lightweight
	r.Remote("git@github.com:acme/svc.git")

	info, err := source.Read(context.Background(), filepath.Join(r.Dir, "svc"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Commit != head || info.ShortSHA() != head[:7] {
		t.Errorf("Commit = %s (%s), want %s", info.Commit, info.ShortSHA(), head)
	}
	if info.Branch != "main" {
		t.Errorf("Branch = %q, want main", info.Branch)
	}
	if want := []string{"nightly", "v1.0.0"}; !reflect.DeepEqual(info.Tags, want) {
		t.Errorf("Tags = %v, want %v", info.Tags, want)
	}
	if !info.Time.Equal(r.Time()) {
		t.Errorf("Time = %v, want %v", info.Time, r.Time())
	}
	if info.Dirty {
		t.Error("Dirty = true on a clean tree")
	}
	if info.Remote != "https://github.com/acme/svc" {
		t.Errorf("Remote = %q", info.Remote)
	}
	if info.Root != r.Dir {
		t.Errorf("Root = %q, want %q", info.Root, r.Dir)
	}
}

func TestReadDirty(t *testing.T) {
	r := gittest.New(t)
	r.Commit("init", map[string]string{"a.txt": "a"})

	r.Write(map[string]string{"untracked.txt": "x"})
	info, err := source.Read(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Dirty {
		t.Error("an untracked file made the tree dirty; git describe --dirty ignores them")
	}

	if err := os.WriteFile(filepath.Join(r.Dir, "a.txt"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err = source.Read(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Dirty {
		t.Error("a modified tracked file did not make the tree dirty")
	}
}

func TestReadDetached(t *testing.T) {
	r := gittest.New(t)
	c := r.Commit("init", nil)
	r.Commit("next", nil)
	r.Detach(c)
	info, err := source.Read(context.Background(), r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Branch != "" || info.Commit != c {
		t.Errorf("detached: Branch = %q Commit = %s, want empty and %s", info.Branch, info.Commit, c)
	}
}

func TestLogSince(t *testing.T) {
	r := gittest.New(t)
	base := r.Commit("chore: base", nil)
	r.Checkout("feature", true)
	side := r.Commit("feat: side", nil)
	r.Checkout("main", false)
	m1 := r.Commit("fix: on main", nil)
	merge := r.Merge("Merge feature", side)

	repo, err := source.Open(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := repo.Log(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, c := range got {
		hashes = append(hashes, c.Hash)
	}
	if want := []string{merge, m1, side}; !reflect.DeepEqual(hashes, want) {
		t.Errorf("Log(base) = %v, want %v (newest first, base excluded)", hashes, want)
	}
	all, err := repo.Log(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Errorf("Log(\"\") has %d commits, want 4", len(all))
	}
	if got[0].Subject() != "Merge feature" {
		t.Errorf("Subject = %q", got[0].Subject())
	}
}

func TestPublicURL(t *testing.T) {
	for in, want := range map[string]string{
		"git@github.com:acme/svc.git":                 "https://github.com/acme/svc",
		"https://user:s3cret@github.com/acme/svc.git": "https://github.com/acme/svc",
		"ssh://git@gitea.example:2222/acme/svc.git":   "https://gitea.example/acme/svc",
		"https://github.com/acme/svc":                 "https://github.com/acme/svc",
		"":                                            "",
		"not a url":                                   "",
	} {
		if got := source.PublicURL(in); got != want {
			t.Errorf("PublicURL(%q) = %q, want %q", in, got, want)
		}
	}
}
