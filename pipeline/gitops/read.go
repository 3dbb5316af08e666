package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/go-git/go-billy/v5/memfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/memory"
	"gopkg.in/yaml.v3"
)

// Revision is one version of an overlay file on the base branch.
type Revision struct {
	Commit  string
	When    time.Time // the commit's time
	Content []byte
}

// Read returns an overlay file as the base branch has it now.
func (r *Repo) Read(ctx context.Context, path string) (Revision, error) {
	revs, err := r.history(ctx, path, 1)
	if err != nil {
		return Revision{}, err
	}
	return revs[0], nil
}

// History returns the versions of an overlay file on the base branch, newest
// first: the current one, then each earlier content it had (commits that did
// not change it are skipped). At most limit versions; 0 means all.
func (r *Repo) History(ctx context.Context, path string, limit int) ([]Revision, error) {
	return r.history(ctx, path, limit)
}

func (r *Repo) history(ctx context.Context, path string, limit int) ([]Revision, error) {
	revs, err := r.Histories(ctx, []string{path}, limit)
	if err != nil {
		return nil, err
	}
	if len(revs[path]) == 0 {
		return nil, fmt.Errorf("reading %s on %s: %w", path, r.Base, ErrNoFile)
	}
	return revs[path], nil
}

// Histories reads the histories of several files from one clone (see
// History). A file the base branch does not have is left out of the map.
func (r *Repo) Histories(ctx context.Context, paths []string, limit int) (map[string][]Revision, error) {
	opts := &git.CloneOptions{URL: r.URL, Auth: r.auth(), ReferenceName: plumbing.NewBranchReferenceName(r.Base), SingleBranch: true, NoCheckout: true}
	if limit == 1 {
		opts.Depth = r.depth(1)
	}
	repo, err := git.CloneContext(ctx, memory.NewStorage(), memfs.New(), opts)
	if err != nil {
		return nil, r.gitError("cloning", err)
	}
	head, err := repo.Head()
	if err != nil {
		return nil, err
	}
	out := map[string][]Revision{}
	for _, p := range paths {
		revs, err := walk(repo, head.Hash(), p, limit)
		if err != nil {
			return nil, err
		}
		if len(revs) > 0 {
			out[p] = revs
		}
	}
	return out, nil
}

// walk follows one file back through the history from head.
func walk(repo *git.Repository, head plumbing.Hash, path string, limit int) ([]Revision, error) {
	iter, err := repo.Log(&git.LogOptions{From: head})
	if err != nil {
		return nil, err
	}
	var out []Revision
	stop := errors.New("enough")
	err = iter.ForEach(func(c *object.Commit) error {
		content, err := fileAt(c, path)
		if errors.Is(err, object.ErrFileNotFound) {
			return stop // the file did not exist before this point
		}
		if err != nil {
			return err
		}
		if len(out) > 0 && string(out[len(out)-1].Content) == string(content) {
			// The same content further back: it arrived earlier than we thought.
			out[len(out)-1].Commit, out[len(out)-1].When = c.Hash.String(), c.Committer.When.UTC()
			return nil
		}
		out = append(out, Revision{Commit: c.Hash.String(), When: c.Committer.When.UTC(), Content: content})
		if limit > 0 && len(out) > limit {
			out = out[:limit]
			return stop
		}
		return nil
	})
	if err != nil && !errors.Is(err, stop) && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return nil, fmt.Errorf("reading the history of %s: %w", path, err)
	}
	return out, nil
}

func fileAt(c *object.Commit, path string) ([]byte, error) {
	f, err := c.File(path)
	if err != nil {
		return nil, err
	}
	rd, err := f.Reader()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// Get reads the string value at a dotted key path.
func Get(doc []byte, path string) (string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		return "", fmt.Errorf("parsing YAML: %w", err)
	}
	if root.Kind == 0 {
		return "", fmt.Errorf("reading %s: %w (the file is empty)", path, ErrNoKey)
	}
	n := root.Content[0]
	for _, k := range strings.Split(path, ".") {
		if n.Kind != yaml.MappingNode {
			return "", fmt.Errorf("reading %s: %w", path, ErrNoKey)
		}
		if n = lookup(n, k); n == nil {
			return "", fmt.Errorf("reading %s: %w", path, ErrNoKey)
		}
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("reading %s: it holds a %s: %w", path, kindName(n.Kind), ErrUnsupported)
	}
	return n.Value, nil
}

// Deployed reads the image an overlay deploys through the configured keys:
// its tag, digest and repository, as far as the keys say.
func Deployed(doc []byte, keys map[string]Field) (Image, error) {
	var img Image
	for k, f := range keys {
		v, err := Get(doc, k)
		if err != nil {
			return Image{}, err
		}
		switch f {
		case FieldTag:
			img.Tag = v
		case FieldDigest:
			img.Digest = v
		case FieldRepository:
			img.Repository = v
		case FieldReference:
			rest, digest, _ := strings.Cut(v, "@")
			img.Digest = digest
			if i := strings.LastIndexAny(rest, ":/"); i >= 0 && rest[i] == ':' {
				img.Repository, img.Tag = rest[:i], rest[i+1:]
			} else {
				img.Repository = rest
			}
		}
	}
	return img, nil
}
