package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"

	"github.com/tagflow/tagflow/pipeline/tags"
)

// RetainOptions say what to keep.
type RetainOptions struct {
	Keep    int               // the newest digests kept (by the image's created time), besides the protected ones
	Protect map[string]string // digest → why it must stay (e.g. a GitOps overlay that references it)
	Apply   bool              // delete; without it Retain only reports
}

// Decision is what retention does with one digest.
type Decision struct {
	Digest    string    `json:"digest"`
	Tags      []string  `json:"tags"`
	Created   time.Time `json:"created"`
	Keep      bool      `json:"keep"`
	Reasons   []string  `json:"reasons,omitempty"`   // why it is kept
	Referrers []string  `json:"referrers,omitempty"` // attestations and signatures that share its fate
	Children  []string  `json:"children,omitempty"`  // the images of an index, which share its fate
}

// Retention is the outcome of one retention run.
type Retention struct {
	Repository string     `json:"repository"`
	Decisions  []Decision `json:"decisions"` // newest first
	Applied    bool       `json:"applied"`
	Deleted    []string   `json:"deleted,omitempty"` // every manifest deleted, referrers and children included
	// TagDelete reports whether the registry deleted single tags (distribution
	// 2.8 cannot; there a digest is deleted with all its tags at once).
	TagDelete bool `json:"tag_delete"`
}

// Doomed lists the decisions to delete.
func (r *Retention) Doomed() []Decision {
	var out []Decision
	for _, d := range r.Decisions {
		if !d.Keep {
			out = append(out, d)
		}
	}
	return out
}

// fallbackTag is the tag under which referrers of a subject are indexed on
// registries without the referrers API (and cosign's .sig/.att/.sbom tags).
var fallbackTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})(\..+)?$`)

type entry struct {
	digest   string
	tags     []string
	created  time.Time
	index    bool
	children []string
	parents  []string
	reasons  []string
}

// Retain decides, per digest of repo, whether to keep it, and deletes the rest
// when asked. A digest stays when an env-* or vX.Y.Z tag names it, when the
// caller protects it, when it is among the Keep newest, or when it is an image
// of a kept index. Referrers go with their subject.
func (c *Client) Retain(ctx context.Context, repo name.Repository, o RetainOptions) (*Retention, error) {
	if o.Keep < 1 {
		return nil, fmt.Errorf("retaining %s: keep %d: keep at least 1 digest", repo, o.Keep)
	}
	opts, err := c.remote(ctx, repo, scopeDelete)
	if err != nil {
		return nil, err
	}
	names, err := remote.List(repo, opts...)
	if err != nil {
		return nil, classify(fmt.Sprintf("listing tags of %s", repo), err)
	}
	fallback := map[string][]string{} // subject digest → fallback tags
	var plain []string
	for _, n := range names {
		if m := fallbackTag.FindStringSubmatch(n); m != nil {
			fallback["sha256:"+m[1]] = append(fallback["sha256:"+m[1]], n)
		} else {
			plain = append(plain, n)
		}
	}

	entries, err := c.inventory(ctx, repo, plain, opts)
	if err != nil {
		return nil, err
	}
	res := &Retention{Repository: repo.String()}
	decide(entries, o)

	// Referrers: through the API where the registry has it, else the fallback tags.
	api := c.hasReferrersAPI(ctx, repo, entries)
	for _, e := range sorted(entries) {
		d := Decision{Digest: e.digest, Tags: e.tags, Created: e.created, Keep: len(e.reasons) > 0, Reasons: e.reasons, Children: e.children}
		if !d.Keep {
			if d.Referrers, err = c.referrers(ctx, repo, e.digest, api, fallback, opts); err != nil {
				return nil, err
			}
		}
		res.Decisions = append(res.Decisions, d)
	}
	if !o.Apply {
		return res, nil
	}
	return res, c.apply(ctx, repo, res, entries, fallback, opts)
}

// inventory resolves every tag and reads each digest's creation time and
// children, concurrently.
func (c *Client) inventory(ctx context.Context, repo name.Repository, names []string, opts []remote.Option) (map[string]*entry, error) {
	var mu sync.Mutex
	entries := map[string]*entry{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.jobs)
	for _, n := range names {
		g.Go(func() error {
			d, err := c.head(gctx, repo.Tag(n), opts)
			if err != nil || d == "" {
				return err // a tag deleted meanwhile is simply gone
			}
			mu.Lock()
			defer mu.Unlock()
			e := entries[d]
			if e == nil {
				e = &entry{digest: d}
				entries[d] = e
			}
			e.tags = append(e.tags, n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	tagged := make([]*entry, 0, len(entries))
	for _, e := range entries {
		tagged = append(tagged, e)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(c.o.jobs)
	for _, e := range tagged {
		g.Go(func() error {
			created, children, err := c.describe(gctx, repo.Digest(e.digest), opts)
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			e.created, e.children, e.index = created, children, children != nil
			for _, ch := range children {
				ce := entries[ch]
				if ce == nil {
					ce = &entry{digest: ch, created: created}
					entries[ch] = ce
				}
				ce.parents = append(ce.parents, e.digest)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, e := range entries {
		sort.Strings(e.tags)
	}
	return entries, nil
}

// describe reads a manifest's creation time, and an index's children.
func (c *Client) describe(ctx context.Context, ref name.Digest, opts []remote.Option) (time.Time, []string, error) {
	desc, err := remote.Get(ref, append(opts, remote.WithContext(ctx))...)
	if err != nil {
		return time.Time{}, nil, classify(fmt.Sprintf("reading %s", ref), err)
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("reading index %s: %w", ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return time.Time{}, nil, fmt.Errorf("reading index %s: %w", ref, err)
		}
		children := []string{}
		var created time.Time
		for _, m := range im.Manifests {
			children = append(children, m.Digest.String())
			if created.IsZero() && m.MediaType.IsImage() {
				if t, _, err := c.describe(ctx, ref.Context().Digest(m.Digest.String()), opts); err == nil {
					created = t
				}
			}
		}
		return created, children, nil
	}
	if !desc.MediaType.IsImage() {
		return time.Time{}, nil, nil // an artifact: no config to date it by
	}
	img, err := desc.Image()
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("reading image %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("reading config of %s: %w", ref, err)
	}
	return cf.Created.Time, nil, nil
}

// decide fills each entry's reasons to stay; an entry without one goes.
func decide(entries map[string]*entry, o RetainOptions) {
	for _, e := range entries {
		for _, t := range e.tags {
			switch p := tags.Parse(t); p.Kind {
			case tags.Env:
				e.reasons = append(e.reasons, "environment tag "+t)
			case tags.Version:
				e.reasons = append(e.reasons, "release tag "+t)
			}
		}
		if why, ok := o.Protect[e.digest]; ok {
			e.reasons = append(e.reasons, why)
		}
	}
	// Rank the top-level digests (not images inside an index) by age.
	var ranked []*entry
	for _, e := range entries {
		if len(e.parents) == 0 {
			ranked = append(ranked, e)
		}
	}
	sortEntries(ranked)
	for i, e := range ranked {
		if i < o.Keep {
			e.reasons = append(e.reasons, fmt.Sprintf("among the %d newest", o.Keep))
		}
	}
	// An index's images stay with it.
	for _, e := range entries {
		if len(e.reasons) == 0 {
			continue
		}
		for _, ch := range e.children {
			if ce := entries[ch]; ce != nil && !slices.Contains(ce.reasons, "image of kept index "+short(e.digest)) {
				ce.reasons = append(ce.reasons, "image of kept index "+short(e.digest))
			}
		}
	}
}

func sortEntries(es []*entry) {
	sort.Slice(es, func(i, j int) bool {
		if !es[i].created.Equal(es[j].created) {
			return es[i].created.After(es[j].created)
		}
		return es[i].digest < es[j].digest
	})
}

// sorted lists the top-level entries newest first, then the images of
// indexes that have no tags of their own are reported with their index.
func sorted(entries map[string]*entry) []*entry {
	var out []*entry
	for _, e := range entries {
		if len(e.parents) == 0 || len(e.tags) > 0 {
			out = append(out, e)
		}
	}
	sortEntries(out)
	return out
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// hasReferrersAPI asks the registry once whether it serves the OCI referrers API.
func (c *Client) hasReferrersAPI(ctx context.Context, repo name.Repository, entries map[string]*entry) bool {
	var any string
	for d := range entries {
		any = d
		break
	}
	if any == "" {
		return false
	}
	t, err := c.transport(ctx, repo, scopeDelete)
	if err != nil {
		return false
	}
	u := fmt.Sprintf("%s://%s/v2/%s/referrers/%s", repo.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), any)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	req.Header.Set("Accept", string("application/vnd.oci.image.index.v1+json"))
	res, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK && strings.Contains(res.Header.Get("Content-Type"), "index")
}

// referrers lists the manifests attached to a subject.
func (c *Client) referrers(ctx context.Context, repo name.Repository, subject string, api bool, fallback map[string][]string, opts []remote.Option) ([]string, error) {
	var out []string
	if api {
		idx, err := remote.Referrers(repo.Digest(subject), append(opts, remote.WithContext(ctx))...)
		if err != nil {
			return nil, classify(fmt.Sprintf("listing referrers of %s@%s", repo, subject), err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, m := range im.Manifests {
			out = append(out, m.Digest.String())
		}
	}
	for _, tag := range fallback[subject] {
		desc, err := remote.Get(repo.Tag(tag), append(opts, remote.WithContext(ctx))...)
		if err != nil {
			if isNotFound(classify("", err)) {
				continue
			}
			return nil, classify(fmt.Sprintf("reading %s:%s", repo, tag), err)
		}
		if desc.MediaType.IsIndex() {
			idx, err := desc.ImageIndex()
			if err != nil {
				return nil, err
			}
			im, err := idx.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, m := range im.Manifests {
				out = append(out, m.Digest.String())
			}
		}
		out = append(out, desc.Digest.String()) // the fallback index (or cosign's manifest) itself
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// apply deletes what the decisions doom, after checking that no environment
// or release tag moved onto a doomed digest since they were made.
func (c *Client) apply(ctx context.Context, repo name.Repository, res *Retention, entries map[string]*entry, fallback map[string][]string, opts []remote.Option) error {
	res.Applied = true
	doomed := map[string]bool{}
	for _, d := range res.Doomed() {
		doomed[d.Digest] = true
	}
	// Tags that protect: list and resolve them again right before deleting,
	// so a promotion or rollback that happened meanwhile is seen.
	names, err := remote.List(repo, opts...)
	if err != nil {
		return classify(fmt.Sprintf("listing tags of %s", repo), err)
	}
	for _, t := range names {
		if k := tags.Parse(t).Kind; k != tags.Env && k != tags.Version {
			continue
		}
		now, err := c.head(ctx, repo.Tag(t), opts)
		if err != nil {
			return err
		}
		if doomed[now] {
			return fmt.Errorf("retaining %s: tag %s now names %s, which was to be deleted; nothing deleted, run again", repo, t, now)
		}
	}

	var doomedTags []string
	for _, d := range res.Doomed() {
		doomedTags = append(doomedTags, d.Tags...)
	}
	// Deleting single tags first (where the registry can) keeps each manifest
	// delete from scanning thousands of tags.
	if len(doomedTags) > 0 {
		ok, err := c.deleteTag(ctx, repo, doomedTags[0], opts)
		if err != nil {
			return err
		}
		res.TagDelete = ok
		switch {
		case ok:
			if err := c.parallel(ctx, doomedTags[1:], func(ctx context.Context, t string) error {
				_, err := c.deleteTag(ctx, repo, t, opts)
				return err
			}); err != nil {
				return err
			}
		case len(res.Doomed()) > 1:
			if err := c.entomb(ctx, repo, doomedTags, opts); err != nil {
				return err
			}
		}
	}

	var refs, tops, children []string
	for _, d := range res.Doomed() {
		refs = append(refs, d.Referrers...)
		tops = append(tops, d.Digest)
		for _, ch := range d.Children {
			if ce := entries[ch]; ce != nil && len(ce.reasons) == 0 {
				children = append(children, ch)
			}
		}
	}
	kept := map[string]bool{}
	for _, e := range entries {
		if len(e.reasons) > 0 {
			kept[e.digest] = true
		}
	}
	var mu sync.Mutex
	del := func(ctx context.Context, d string) error {
		if kept[d] {
			return nil // shared with something kept
		}
		err := remote.Delete(repo.Digest(d), append(opts, remote.WithContext(ctx))...)
		if err != nil {
			if err := classify("", err); isNotFound(err) {
				return nil // already gone (a referrer listed twice, a child deleted with its index)
			}
			return deleteError(repo.Digest(d).String(), err)
		}
		mu.Lock()
		res.Deleted = append(res.Deleted, d)
		mu.Unlock()
		return nil
	}
	for _, batch := range [][]string{refs, tops, dedupe(children)} {
		if err := c.parallel(ctx, batch, del); err != nil {
			return err
		}
	}
	sort.Strings(res.Deleted)
	return nil
}

// entomb removes doomed tags on registries that cannot delete a single tag.
// There every manifest delete scans every tag of the repository, so deleting
// D digests among T tags costs D×T tag reads. Instead each doomed tag is
// pointed at one tiny tombstone manifest and the tombstone is deleted: one
// scan removes them all, and the doomed digests, now untagged, are deleted
// against the few tags left. Only tags already doomed ever name the tombstone.
func (c *Client) entomb(ctx context.Context, repo name.Repository, doomedTags []string, opts []remote.Option) error {
	cfg := static.NewLayer([]byte("{}"), types.MediaType("application/vnd.oci.empty.v1+json"))
	if err := remote.WriteLayer(repo, cfg, append(opts, remote.WithContext(ctx))...); err != nil {
		return classify(fmt.Sprintf("writing the retention tombstone to %s", repo), err)
	}
	stone := tombstone{}
	if err := c.parallel(ctx, doomedTags, func(ctx context.Context, t string) error {
		if err := remote.Put(repo.Tag(t), stone, append(opts, remote.WithContext(ctx))...); err != nil {
			return classify(fmt.Sprintf("retiring tag %s:%s", repo, t), err)
		}
		return nil
	}); err != nil {
		return err
	}
	d, err := stone.Digest()
	if err != nil {
		return err
	}
	if err := remote.Delete(repo.Digest(d.String()), append(opts, remote.WithContext(ctx))...); err != nil {
		return deleteError(repo.Digest(d.String()).String(), err)
	}
	return nil
}

// tombstone is an empty OCI image manifest: the OCI empty config, no layers.
type tombstone struct{}

const tombstoneManifest = `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
	`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
	`"layers":[],"annotations":{"org.opencontainers.image.description":"tagflow retention tombstone: the tags naming it are being deleted"}}`

func (tombstone) RawManifest() ([]byte, error)        { return []byte(tombstoneManifest), nil }
func (tombstone) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (t tombstone) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(strings.NewReader(tombstoneManifest))
	return h, err
}

func dedupe(xs []string) []string {
	slices.Sort(xs)
	return slices.Compact(xs)
}

// deleteTag deletes one tag; false means the registry cannot delete single
// tags (distribution 2.8 answers 400, others 405).
func (c *Client) deleteTag(ctx context.Context, repo name.Repository, tag string, opts []remote.Option) (bool, error) {
	err := remote.Delete(repo.Tag(tag), append(opts, remote.WithContext(ctx))...)
	if err == nil {
		return true, nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusBadRequest, http.StatusMethodNotAllowed:
			return false, nil
		case http.StatusNotFound:
			return true, nil
		}
	}
	return false, deleteError(repo.Tag(tag).String(), err)
}

func deleteError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusMethodNotAllowed {
		return fmt.Errorf("deleting %s: the registry does not allow deletes (distribution: storage.delete.enabled): %w", ref, err)
	}
	return classify("deleting "+ref, err)
}

// parallel runs f over items with the client's concurrency.
func (c *Client) parallel(ctx context.Context, items []string, f func(context.Context, string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.o.jobs)
	for _, it := range items {
		g.Go(func() error { return f(gctx, it) })
	}
	return g.Wait()
}
