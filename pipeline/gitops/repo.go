package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5"
	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	"github.com/go-git/go-git/v5/storage/memory"
)

// ErrName reports a service or environment name that cannot name a path.
var ErrName = errors.New("invalid name")

// ErrNoFile reports an overlay file that does not exist.
var ErrNoFile = errors.New("overlay file not found")

var (
	serviceRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	envRE     = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// OverlayPath fills the template ({service}, {env}) and refuses names and
// results that could leave the repository: ../ in a name, absolute paths.
func OverlayPath(template, service, env string) (string, error) {
	if !serviceRE.MatchString(service) {
		return "", fmt.Errorf("service %q: %w: lowercase letters, digits and single . _ - separators", service, ErrName)
	}
	if !envRE.MatchString(env) {
		return "", fmt.Errorf("environment %q: %w: letters, digits and _", env, ErrName)
	}
	p := strings.NewReplacer("{service}", service, "{env}", env).Replace(template)
	clean := path.Clean(p)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || clean != p {
		return "", fmt.Errorf("overlay path %q: %w: it must stay inside the repository", p, ErrName)
	}
	return clean, nil
}

// Repo is a GitOps repository reached over git.
type Repo struct {
	URL    string
	Base   string // the branch deployments are merged into
	Token  string // for HTTPS; sent as basic-auth password, never put into a URL
	Author object.Signature
	// Retries is how often a rejected push is retried from a fresh clone.
	Retries int

	beforePush func() // test seam: runs before each push
}

// Change is one overlay update.
type Change struct {
	Service, Env string
	Path         string // from OverlayPath
	Edits        []Edit
	Create       bool   // create the file and keys when missing
	Message      string // commit message
}

// Result says what happened.
type Result struct {
	Branch   string // the branch pushed (or that would have been)
	Commit   string // its head commit
	Pushed   bool   // a new commit was pushed
	UpToDate bool   // the base branch already has these values: nothing to propose
	Attempts int
}

// Branch is the branch tagflow uses for a service and environment.
func Branch(service, env string) string { return "tagflow/" + service + "/" + env }

func (r *Repo) auth() transport.AuthMethod {
	if r.Token == "" {
		return nil
	}
	return &githttp.BasicAuth{Username: "tagflow", Password: r.Token}
}

// Propose puts the change on the service's branch: a fresh commit on top of
// the base branch, force-pushed with a lease so a concurrent update is never
// overwritten unseen. With direct set it commits onto the base branch itself
// (for environments that take changes without review). A push rejected
// because the branch moved is retried from a fresh clone, Retries times.
func (r *Repo) Propose(ctx context.Context, ch Change, direct bool) (Result, error) {
	retries := r.Retries
	if retries == 0 {
		retries = 3
	}
	var last error
	for attempt := 1; attempt <= retries; attempt++ {
		res, err := r.propose(ctx, ch, direct)
		res.Attempts = attempt
		if err == nil || !errors.Is(err, errRaced) {
			return res, err
		}
		last = err
	}
	return Result{Attempts: retries}, fmt.Errorf("pushing to %s: gave up after %d attempts: %w", r.URL, retries, last)
}

var errRaced = errors.New("the branch moved while we worked")

func (r *Repo) propose(ctx context.Context, ch Change, direct bool) (Result, error) {
	branch := Branch(ch.Service, ch.Env)
	target := branch
	if direct {
		target = r.Base
	}
	res := Result{Branch: target}

	repo, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), &git.CloneOptions{
		URL:           r.URL,
		Auth:          r.auth(),
		ReferenceName: plumbing.NewBranchReferenceName(r.Base),
		SingleBranch:  true,
		Depth:         r.depth(1),
	})
	if err != nil {
		return res, r.gitError("cloning", err)
	}
	baseRef, err := repo.Head()
	if err != nil {
		return res, fmt.Errorf("cloning %s: %w", r.URL, err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		return res, err
	}
	old, err := readFile(wt.Filesystem, ch.Path)
	switch {
	case errors.Is(err, os.ErrNotExist) && ch.Create:
		old = nil
	case errors.Is(err, os.ErrNotExist):
		return res, fmt.Errorf("reading %s on %s: %w", ch.Path, r.Base, ErrNoFile)
	case err != nil:
		return res, fmt.Errorf("reading %s: %w", ch.Path, err)
	}
	doc, changed, err := Set(old, ch.Edits, ch.Create)
	if err != nil {
		return res, fmt.Errorf("editing %s: %w", ch.Path, err)
	}
	if !changed {
		res.UpToDate, res.Commit = true, baseRef.Hash().String()
		return res, nil
	}
	if err := writeFile(wt.Filesystem, ch.Path, doc); err != nil {
		return res, err
	}
	if _, err := wt.Add(ch.Path); err != nil {
		return res, err
	}
	author := r.Author
	if author.Name == "" {
		author = object.Signature{Name: "tagflow", Email: "tagflow@users.noreply.localhost"}
	}
	author.When = time.Now()
	commit, err := wt.Commit(ch.Message, &git.CommitOptions{Author: &author, Committer: &author})
	if err != nil {
		return res, fmt.Errorf("committing: %w", err)
	}

	// The current remote branch: is it already exactly this change on this base?
	remoteHead, err := r.remoteHead(ctx, repo, target)
	if err != nil {
		return res, err
	}
	if !direct && remoteHead != plumbing.ZeroHash {
		same, err := r.sameChange(ctx, repo, target, remoteHead, commit, baseRef.Hash())
		if err != nil {
			return res, err
		}
		if same {
			res.Commit = remoteHead.String()
			return res, nil
		}
	}

	if r.beforePush != nil {
		r.beforePush()
	}
	// Push a local branch ref (go-git checks a lease only for refs, not for
	// a bare commit). Without force the push fails when the target moved on
	// (direct) or was created meanwhile (new branch); with force, the lease
	// fails when the branch no longer is what we read.
	local := plumbing.NewBranchReferenceName(target)
	if err := repo.Storer.SetReference(plumbing.NewHashReference(local, commit)); err != nil {
		return res, err
	}
	spec := config.RefSpec(local.String() + ":" + local.String())
	opts := &git.PushOptions{Auth: r.auth(), RefSpecs: []config.RefSpec{spec}}
	if !direct && remoteHead != plumbing.ZeroHash {
		tracking := plumbing.NewRemoteReferenceName("origin", target)
		if err := repo.Storer.SetReference(plumbing.NewHashReference(tracking, remoteHead)); err != nil {
			return res, err
		}
		opts.RefSpecs[0] = "+" + spec
		opts.ForceWithLease = &git.ForceWithLease{RefName: local, Hash: remoteHead}
	}
	if err := repo.PushContext(ctx, opts); err != nil {
		if isRejected(err) {
			return res, fmt.Errorf("pushing %s: %w: %v", target, errRaced, err)
		}
		return res, r.gitError("pushing "+target+" to", err)
	}
	res.Commit, res.Pushed = commit.String(), true
	return res, nil
}

// depth is n for remote repositories and 0 (everything) for a local path:
// go-git's in-process server does not do shallow, and on one disk it saves nothing.
func (r *Repo) depth(n int) int {
	if !strings.Contains(r.URL, "://") || strings.HasPrefix(r.URL, "file://") {
		return 0
	}
	return n
}

// remoteHead is the remote branch's commit, or the zero hash when it does not exist.
func (r *Repo) remoteHead(ctx context.Context, repo *git.Repository, branch string) (plumbing.Hash, error) {
	rem, err := repo.Remote("origin")
	if err != nil {
		return plumbing.ZeroHash, err
	}
	refs, err := rem.ListContext(ctx, &git.ListOptions{Auth: r.auth()})
	if err != nil {
		return plumbing.ZeroHash, r.gitError("listing branches of", err)
	}
	want := plumbing.NewBranchReferenceName(branch)
	for _, ref := range refs {
		if ref.Name() == want {
			return ref.Hash(), nil
		}
	}
	return plumbing.ZeroHash, nil
}

// sameChange reports whether the remote branch head already is this change:
// the same tree, on the same base.
func (r *Repo) sameChange(ctx context.Context, repo *git.Repository, branch string, head, ours, base plumbing.Hash) (bool, error) {
	err := repo.FetchContext(ctx, &git.FetchOptions{
		Auth:     r.auth(),
		RefSpecs: []config.RefSpec{config.RefSpec(fmt.Sprintf("+refs/heads/%s:refs/remotes/origin/%s", branch, branch))},
		Depth:    r.depth(2),
	})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return false, r.gitError("fetching "+branch+" from", err)
	}
	theirs, err := repo.CommitObject(head)
	if err != nil {
		return false, nil // unreadable: propose anew
	}
	mine, err := repo.CommitObject(ours)
	if err != nil {
		return false, err
	}
	return theirs.TreeHash == mine.TreeHash && len(theirs.ParentHashes) == 1 && theirs.ParentHashes[0] == base, nil
}

func isRejected(err error) bool {
	msg := err.Error()
	return errors.Is(err, git.ErrNonFastForwardUpdate) || strings.Contains(msg, "non-fast-forward") ||
		strings.Contains(msg, "stale info") || strings.Contains(msg, "rejected") || strings.Contains(msg, "failed to update ref")
}

// gitError names the repository without credentials and maps auth failures.
func (r *Repo) gitError(doing string, err error) error {
	if errors.Is(err, transport.ErrAuthenticationRequired) || errors.Is(err, transport.ErrAuthorizationFailed) {
		return fmt.Errorf("%s %s: the git server refused the token: %w", doing, redact(r.URL), err)
	}
	return fmt.Errorf("%s %s: %w", doing, redact(r.URL), err)
}

// redact drops any userinfo from a URL.
func redact(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if at := strings.Index(u[i+3:], "@"); at >= 0 && !strings.Contains(u[i+3:i+3+at], "/") {
			return u[:i+3] + u[i+3+at+1:]
		}
	}
	return u
}

// readFile reads a work-tree file, refusing symlinks anywhere on its path:
// an overlay must be a file of the repository, not a pointer out of it.
func readFile(fsys billy.Filesystem, name string) ([]byte, error) {
	if err := noSymlinks(fsys, name); err != nil {
		return nil, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

func writeFile(fsys billy.Filesystem, name string, data []byte) error {
	if err := noSymlinks(fsys, name); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := fsys.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := fsys.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func noSymlinks(fsys billy.Filesystem, name string) error {
	parts := strings.Split(name, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		st, err := fsys.Lstat(p)
		if err != nil {
			return err
		}
		if st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s: %w: %s is a symbolic link", name, ErrName, p)
		}
	}
	return nil
}
