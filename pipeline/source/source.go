// Package source reads what tagflow needs to know about a source checkout: the
// commit and its time, the branch, the tags on HEAD, whether the work tree is
// dirty, and the history since a commit. It reads git in-process with go-git.
package source

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ErrNoCommits reports a repository whose HEAD points at no commit yet.
var ErrNoCommits = errors.New("repository has no commits")

// ErrNotRepository reports a directory that is not inside a git work tree.
var ErrNotRepository = errors.New("not inside a git repository")

// Info describes HEAD of a checkout.
type Info struct {
	Root   string    // the work tree's top directory
	Commit string    // full SHA of HEAD, lowercase hex
	Time   time.Time // committer time of HEAD, UTC: builds take it as their creation time
	Branch string    // short branch name; empty on a detached HEAD
	Tags   []string  // tags that point at HEAD, lightweight and annotated, sorted
	Dirty  bool      // tracked files differ from HEAD (untracked files do not count, as with git describe --dirty)
	Remote string    // the origin URL as https, without credentials; empty when there is none
}

// ShortSHA is the 7-character abbreviation tagflow tags every build with.
func (i Info) ShortSHA() string {
	if len(i.Commit) < 7 {
		return i.Commit
	}
	return i.Commit[:7]
}

// Commit is one commit of the history, as conventional-commit analysis needs it.
type Commit struct {
	Hash    string
	Message string // the whole message; the first line is the subject
}

// Subject is the first line of the message.
func (c Commit) Subject() string {
	s, _, _ := strings.Cut(c.Message, "\n")
	return strings.TrimSpace(s)
}

// Repo is an opened repository.
type Repo struct {
	repo *git.Repository
	root string
}

// Open opens the repository that contains dir, searching parent directories.
func Open(dir string) (*Repo, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	r, err := git.PlainOpenWithOptions(abs, &git.PlainOpenOptions{DetectDotGit: true})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("opening %s: %w", dir, ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	root := abs
	if wt, err := r.Worktree(); err == nil {
		root = wt.Filesystem.Root()
	}
	return &Repo{repo: r, root: root}, nil
}

// Read opens the repository containing dir and describes its HEAD.
func Read(ctx context.Context, dir string) (Info, error) {
	r, err := Open(dir)
	if err != nil {
		return Info{}, err
	}
	return r.Head(ctx)
}

// Root is the work tree's top directory.
func (r *Repo) Root() string { return r.root }

func (r *Repo) head() (*plumbing.Reference, error) {
	ref, err := r.repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, fmt.Errorf("reading HEAD of %s: %w", r.root, ErrNoCommits)
	}
	if err != nil {
		return nil, fmt.Errorf("reading HEAD of %s: %w", r.root, err)
	}
	return ref, nil
}

// Head describes HEAD.
func (r *Repo) Head(ctx context.Context) (Info, error) {
	ref, err := r.head()
	if err != nil {
		return Info{}, err
	}
	c, err := r.repo.CommitObject(ref.Hash())
	if err != nil {
		return Info{}, fmt.Errorf("reading commit %s: %w", ref.Hash(), err)
	}
	info := Info{
		Root:   r.root,
		Commit: c.Hash.String(),
		Time:   c.Committer.When.UTC(),
	}
	if ref.Name().IsBranch() {
		info.Branch = ref.Name().Short()
	}
	tags, err := r.Tags()
	if err != nil {
		return Info{}, err
	}
	for name, hash := range tags {
		if hash == info.Commit {
			info.Tags = append(info.Tags, name)
		}
	}
	sort.Strings(info.Tags)
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}
	if info.Dirty, err = r.dirty(); err != nil {
		return Info{}, err
	}
	info.Remote = r.remote()
	return info, nil
}

func (r *Repo) dirty() (bool, error) {
	wt, err := r.repo.Worktree()
	if errors.Is(err, git.ErrIsBareRepository) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("opening work tree of %s: %w", r.root, err)
	}
	st, err := wt.Status()
	if err != nil {
		return false, fmt.Errorf("reading status of %s: %w", r.root, err)
	}
	for _, s := range st {
		if s.Worktree == git.Untracked && s.Staging == git.Untracked {
			continue
		}
		if s.Worktree != git.Unmodified || s.Staging != git.Unmodified {
			return true, nil
		}
	}
	return false, nil
}

func (r *Repo) remote() string {
	rem, err := r.repo.Remote("origin")
	if err != nil || len(rem.Config().URLs) == 0 {
		return ""
	}
	return PublicURL(rem.Config().URLs[0])
}

// PublicURL turns a clone URL into the https address a person can open,
// dropping credentials, and the scp-like git@host:org/repo form included.
func PublicURL(raw string) string {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ""
	}
	if !strings.Contains(raw, "://") {
		// scp-like: [user@]host:path
		if at := strings.Index(raw, "@"); at >= 0 {
			raw = raw[at+1:]
		}
		host, path, ok := strings.Cut(raw, ":")
		if !ok {
			return ""
		}
		raw = "https://" + host + "/" + strings.TrimPrefix(path, "/")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Scheme == "ssh" || u.Scheme == "git" {
		u.Scheme = "https"
		u.Host = u.Hostname()
	}
	u.User = nil
	u.RawQuery, u.Fragment = "", ""
	u.Path = strings.TrimSuffix(u.Path, ".git")
	return u.String()
}

// Tags maps every tag name to the commit it points at, annotated tags peeled.
func (r *Repo) Tags() (map[string]string, error) {
	iter, err := r.repo.Tags()
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", r.root, err)
	}
	out := map[string]string{}
	err = iter.ForEach(func(ref *plumbing.Reference) error {
		hash := ref.Hash()
		if tag, err := r.repo.TagObject(hash); err == nil {
			c, err := tag.Commit()
			if err != nil {
				return nil // a tag of a tree or blob names no build
			}
			hash = c.Hash
		}
		out[ref.Name().Short()] = hash.String()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing tags of %s: %w", r.root, err)
	}
	return out, nil
}

// Log returns the commits reachable from HEAD and not from since (git log
// since..HEAD), newest first by committer time. An empty since means all of
// HEAD's history.
func (r *Repo) Log(ctx context.Context, since string) ([]Commit, error) {
	ref, err := r.head()
	if err != nil {
		return nil, err
	}
	exclude := map[plumbing.Hash]bool{}
	if since != "" {
		if err := r.walk(ctx, plumbing.NewHash(since), nil, func(c *object.Commit) { exclude[c.Hash] = true }); err != nil {
			return nil, err
		}
	}
	var commits []*object.Commit
	if err := r.walk(ctx, ref.Hash(), exclude, func(c *object.Commit) { commits = append(commits, c) }); err != nil {
		return nil, err
	}
	sort.SliceStable(commits, func(i, j int) bool { return commits[i].Committer.When.After(commits[j].Committer.When) })
	out := make([]Commit, len(commits))
	for i, c := range commits {
		out[i] = Commit{Hash: c.Hash.String(), Message: c.Message}
	}
	return out, nil
}

// walk visits from and its ancestors once each, skipping the excluded ones.
func (r *Repo) walk(ctx context.Context, from plumbing.Hash, exclude map[plumbing.Hash]bool, visit func(*object.Commit)) error {
	seen := map[plumbing.Hash]bool{}
	queue := []plumbing.Hash{from}
	for len(queue) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		h := queue[0]
		queue = queue[1:]
		if seen[h] || exclude[h] {
			continue
		}
		seen[h] = true
		c, err := r.repo.CommitObject(h)
		if err != nil {
			return fmt.Errorf("reading commit %s: %w", h, err)
		}
		visit(c)
		queue = append(queue, c.ParentHashes...)
	}
	return nil
}
