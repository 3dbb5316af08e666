package gitops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
	"github.com/go-git/go-git/v5/storage/memory"
)

// Local repositories (file paths) are served in-process by go-git itself, so
// a machine without a git binary can use one.
func init() { client.InstallProtocol("file", server.DefaultServer) }

// SeedLocal creates a bare repository at dir whose base branch holds the
// files under seed, unless a repository is already there. It reports whether
// it created one.
func SeedLocal(ctx context.Context, dir, seed, base string) (bool, error) {
	if _, err := git.PlainOpen(dir); err == nil {
		return false, nil
	}
	if _, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{Bare: true,
		InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName(base)}}); err != nil {
		return false, fmt.Errorf("creating the GitOps repository %s: %w", dir, err)
	}
	work := memfs.New()
	repo, err := git.Init(memory.NewStorage(), work)
	if err != nil {
		return false, err
	}
	err = filepath.WalkDir(seed, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(seed, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return writeFile(work, filepath.ToSlash(rel), data)
	})
	if err != nil {
		return false, fmt.Errorf("seeding the GitOps repository from %s: %w", seed, err)
	}
	wt, _ := repo.Worktree()
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		return false, err
	}
	sig := &object.Signature{Name: "tagflow", Email: "tagflow@users.noreply.localhost", When: time.Now()}
	commit, err := wt.Commit("seed from "+filepath.Base(seed), &git.CommitOptions{Author: sig, Committer: sig})
	if err != nil {
		return false, err
	}
	if _, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{dir}}); err != nil {
		return false, err
	}
	ref := plumbing.NewBranchReferenceName(base)
	if err := repo.Storer.SetReference(plumbing.NewHashReference(ref, commit)); err != nil {
		return false, err
	}
	err = repo.PushContext(ctx, &git.PushOptions{RefSpecs: []config.RefSpec{config.RefSpec(ref + ":" + ref)}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return false, fmt.Errorf("seeding the GitOps repository %s: %w", dir, err)
	}
	return true, nil
}
