// Package gittest builds real git repositories for tests, in-process with
// go-git, so tests never depend on a git binary or a user's git config.
package gittest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// Repo is a work tree under a test's temporary directory.
type Repo struct {
	t    testing.TB
	Dir  string
	Git  *git.Repository
	when time.Time
}

// New creates an empty repository whose first branch is main.
func New(t testing.TB) *Repo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")},
	})
	if err != nil {
		t.Fatalf("git init %s: %v", dir, err)
	}
	return &Repo{t: t, Dir: dir, Git: r, when: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Write writes files (path → content) into the work tree without committing.
func (r *Repo) Write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Commit writes files, stages everything and commits with msg. Each commit is
// one minute after the previous one, so history order is deterministic.
func (r *Repo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	r.Write(files)
	wt, err := r.Git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatalf("git add: %v", err)
	}
	r.when = r.when.Add(time.Minute)
	sig := &object.Signature{Name: "Test", Email: "test@example.com", When: r.when}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, AllowEmptyCommits: true})
	if err != nil {
		r.t.Fatalf("git commit: %v", err)
	}
	return h.String()
}

// Time is the committer time of the last commit.
func (r *Repo) Time() time.Time { return r.when }

// Tag tags commit; annotated tags carry a tag object, lightweight ones do not.
func (r *Repo) Tag(name, commit string, annotated bool) {
	r.t.Helper()
	var opts *git.CreateTagOptions
	if annotated {
		opts = &git.CreateTagOptions{Message: name, Tagger: &object.Signature{Name: "Test", Email: "test@example.com", When: r.when}}
	}
	if _, err := r.Git.CreateTag(name, plumbing.NewHash(commit), opts); err != nil {
		r.t.Fatalf("git tag %s: %v", name, err)
	}
}

// Checkout switches to branch, creating it at HEAD when create is set.
func (r *Repo) Checkout(branch string, create bool) {
	r.t.Helper()
	wt, err := r.Git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Branch: plumbing.NewBranchReferenceName(branch), Create: create}); err != nil {
		r.t.Fatalf("git checkout %s: %v", branch, err)
	}
}

// Detach checks out commit with a detached HEAD, as CI does for tag builds.
func (r *Repo) Detach(commit string) {
	r.t.Helper()
	wt, err := r.Git.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: plumbing.NewHash(commit)}); err != nil {
		r.t.Fatalf("git checkout %s: %v", commit, err)
	}
}

// Merge records a merge commit of other into the current branch. go-git cannot
// merge trees, so the merge takes the current tree as it is.
func (r *Repo) Merge(msg, other string) string {
	r.t.Helper()
	head, err := r.Git.Head()
	if err != nil {
		r.t.Fatal(err)
	}
	cur, err := r.Git.CommitObject(head.Hash())
	if err != nil {
		r.t.Fatal(err)
	}
	r.when = r.when.Add(time.Minute)
	sig := object.Signature{Name: "Test", Email: "test@example.com", When: r.when}
	c := &object.Commit{Author: sig, Committer: sig, Message: msg, TreeHash: cur.TreeHash,
		ParentHashes: []plumbing.Hash{head.Hash(), plumbing.NewHash(other)}}
	obj := r.Git.Storer.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		r.t.Fatal(err)
	}
	h, err := r.Git.Storer.SetEncodedObject(obj)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.Git.Storer.SetReference(plumbing.NewHashReference(head.Name(), h)); err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// Remote adds origin with url.
func (r *Repo) Remote(url string) {
	r.t.Helper()
	if _, err := r.Git.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{url}}); err != nil {
		r.t.Fatal(err)
	}
}
