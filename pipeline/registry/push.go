package registry

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sync/errgroup"

	"github.com/tagflow/tagflow/pipeline/tags"
)

// Pushed is what a push left in the registry.
type Pushed struct {
	Repository string            `json:"repository"`
	Digest     string            `json:"digest"`              // of the image or index the plain tags name
	Tags       []string          `json:"tags"`                // every tag written, plain then per-arch
	References []string          `json:"references"`          // repo:tag@digest for each tag
	Platforms  map[string]string `json:"platforms,omitempty"` // arch suffix → image digest, for an index
}

// DigestRef is repo@digest.
func (p *Pushed) DigestRef() string { return p.Repository + "@" + p.Digest }

// Push writes an artifact to repo under every tag of set: each blob uploaded
// at most once (blobs the registry has are skipped), one manifest PUT per tag.
// Per-arch tags name the matching image of an index. An immutable tag that
// already names another digest stops the push before anything is written.
func (c *Client) Push(ctx context.Context, a Artifact, repo name.Repository, set tags.Set, popts ...PushOption) (*Pushed, error) {
	if len(set) == 0 {
		return nil, fmt.Errorf("pushing to %s: no tags to push", repo)
	}
	var po pushOptions
	for _, o := range popts {
		o(&po)
	}
	var extraScopes []string
	if m := po.mountFrom; m != nil && m.Registry == repo.Registry && m.String() != repo.String() {
		a = mountable(a, *m)
		extraScopes = append(extraScopes, m.Scope(scopePull))
	}
	digest, err := a.Digest()
	if err != nil {
		return nil, fmt.Errorf("pushing to %s: reading image digest: %w", repo, err)
	}
	platforms, err := a.Platforms()
	if err != nil {
		return nil, fmt.Errorf("pushing to %s: reading index: %w", repo, err)
	}
	out := &Pushed{Repository: repo.String(), Digest: digest.String()}
	if len(platforms) > 0 {
		out.Platforms = map[string]string{}
	}
	// Per-arch images go first: registries refuse an index whose images they
	// do not have yet, and a single MultiWrite may race the two.
	perArch := map[name.Reference]remote.Taggable{}
	todo := map[name.Reference]remote.Taggable{}
	want := map[string]v1.Hash{} // tag → digest it must end up naming
	for _, t := range set {
		target, d := a.taggable(), digest
		if t.Arch != "" {
			img, ok := platforms[t.Arch]
			if !ok {
				return nil, fmt.Errorf("pushing %s:%s: the image has no %s platform", repo, t.Name, t.Arch)
			}
			if d, err = img.Digest(); err != nil {
				return nil, fmt.Errorf("pushing %s:%s: %w", repo, t.Name, err)
			}
			target = img
			out.Platforms[t.Arch] = d.String()
		}
		ref := repo.Tag(t.Name)
		if t.Arch != "" {
			perArch[ref] = target
		} else {
			todo[ref] = target
		}
		want[t.Name] = d
		out.Tags = append(out.Tags, t.Name)
		out.References = append(out.References, ref.String()+"@"+d.String())
	}

	opts, err := c.remote(ctx, repo, scopePush, extraScopes...)
	if err != nil {
		return nil, err
	}
	if err := c.checkImmutable(ctx, repo, set, want, opts); err != nil {
		return nil, err
	}
	for _, batch := range []map[name.Reference]remote.Taggable{perArch, todo} {
		if len(batch) == 0 {
			continue
		}
		if err := c.multiWrite(batch, opts); err != nil {
			return nil, classify(fmt.Sprintf("pushing %s@%s", repo, digest), err)
		}
	}
	return out, nil
}

// multiWrite writes one batch, reporting progress when asked. Each batch
// needs its own channel: MultiWrite closes it.
func (c *Client) multiWrite(batch map[name.Reference]remote.Taggable, opts []remote.Option) error {
	if c.o.progress == nil {
		return remote.MultiWrite(batch, opts...)
	}
	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			c.o.progress(u.Complete, u.Total)
		}
	}()
	err := remote.MultiWrite(batch, append(opts, remote.WithProgress(updates))...)
	<-done
	return err
}

// checkImmutable refuses the push when an immutable tag already names a
// different digest. Tags are checked concurrently; absent tags are fine.
func (c *Client) checkImmutable(ctx context.Context, repo name.Repository, set tags.Set, want map[string]v1.Hash, opts []remote.Option) error {
	var (
		mu      sync.Mutex
		refused []*ImmutableError
	)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.jobs)
	for _, t := range set {
		if !tags.Parse(t.Name).Immutable() {
			continue
		}
		g.Go(func() error {
			cur, err := c.head(ctx, repo.Tag(t.Name), opts)
			if err != nil || cur == "" || cur == want[t.Name].String() {
				return err
			}
			mu.Lock()
			refused = append(refused, &ImmutableError{Ref: repo.Tag(t.Name).String(), Current: cur, Want: want[t.Name].String()})
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if len(refused) > 0 {
		sort.Slice(refused, func(i, j int) bool { return refused[i].Ref < refused[j].Ref })
		return refused[0]
	}
	return nil
}

// head returns the digest a reference names, or "" when it does not exist.
func (c *Client) head(ctx context.Context, ref name.Reference, opts []remote.Option) (string, error) {
	d, err := remote.Head(ref, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		err = classify(fmt.Sprintf("resolving %s", ref), err)
		if isNotFound(err) {
			return "", nil
		}
		return "", err
	}
	return d.Digest.String(), nil
}
