package registry_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

func TestRetain(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		reg := registrytest.Start(t, kind, registrytest.Options{})
		c := client(t, nil)
		repo := repoAt(t, reg.Host, "acme/retained")
		day := func(n int) time.Time { return time.Date(2026, 3, n, 0, 0, 0, 0, time.UTC) }

		push := func(img v1.Image, names ...string) string {
			t.Helper()
			a, err := registry.Load(writeLayout(t, img))
			if err != nil {
				t.Fatal(err)
			}
			var set tags.Set
			for _, n := range names {
				set = append(set, tags.Parse(n))
			}
			p, err := c.Push(ctx, a, repo, set)
			if err != nil {
				t.Fatal(err)
			}
			return p.Digest
		}
		release := push(image(t, 1, 512, day(1)), "v1.0.0", "aaaaaaa")       // oldest, but a release
		attested := push(image(t, 1, 512, day(2)), "bbbbbbb")                // doomed, with an attestation
		staging := push(image(t, 1, 512, day(3)), "env-staging", "ccccccc")  // an environment runs it
		overlay := push(image(t, 1, 512, day(4)), "ddddddd")                 // a GitOps overlay references it
		branch := push(image(t, 1, 512, day(5)), "eeeeeee", "main", "pr-42") // doomed, three tags
		newest := push(image(t, 1, 512, day(6)), "fffffff")                  // kept: newest

		// An attestation attached to the doomed digest: registries without the
		// referrers API get go-containerregistry's sha256-<hex> fallback tag.
		att, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := remote.Head(repo.Digest(attested), remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		att = mutate.Subject(mutate.MediaType(att, types.OCIManifestSchema1), *sub).(v1.Image)
		attDigest := digestOf(t, att)
		if err := remote.Write(repo.Digest(attDigest), att, remote.WithContext(ctx)); err != nil {
			t.Fatal(err)
		}

		opts := registry.RetainOptions{Keep: 1, Protect: map[string]string{overlay: "referenced by apps/retained/overlays/prod/values.yaml"}}
		dry, err := c.Retain(ctx, repo, opts)
		if err != nil {
			t.Fatal(err)
		}
		var gone []string
		why := map[string][]string{}
		for _, d := range dry.Decisions {
			if !d.Keep {
				gone = append(gone, d.Digest)
			}
			why[d.Digest] = d.Reasons
		}
		slices.Sort(gone)
		want := []string{attested, branch}
		slices.Sort(want)
		if !slices.Equal(gone, want) {
			t.Fatalf("dry run dooms %v, want %v\n%+v", gone, want, dry.Decisions)
		}
		for d, reason := range map[string]string{release: "release tag v1.0.0", staging: "environment tag env-staging", overlay: "referenced by apps/retained/overlays/prod/values.yaml", newest: "among the 1 newest"} {
			if !slices.Contains(why[d], reason) {
				t.Errorf("%s kept for %v, want %q", d, why[d], reason)
			}
		}
		for _, d := range dry.Decisions {
			if d.Digest == attested && !slices.Contains(d.Referrers, attDigest) {
				t.Errorf("the attestation %s is not listed with its subject: %v", attDigest, d.Referrers)
			}
		}
		if dry.Applied || len(dry.Deleted) != 0 {
			t.Fatal("dry run deleted something")
		}
		if got, _ := c.Resolve(ctx, repo.Tag("bbbbbbb")); got != attested {
			t.Fatal("dry run removed a tag")
		}

		applied, err := c.Retain(ctx, repo, registry.RetainOptions{Keep: 1, Protect: opts.Protect, Apply: true})
		if err != nil {
			t.Fatal(err)
		}
		if applied.TagDelete != (kind == registrytest.V3) {
			t.Errorf("TagDelete = %v on %s", applied.TagDelete, kind)
		}
		for _, d := range []string{attested, branch, attDigest} {
			if !slices.Contains(applied.Deleted, d) {
				t.Errorf("%s was not deleted: %v", d, applied.Deleted)
			}
			if _, err := c.Resolve(ctx, repo.Digest(d)); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("%s still resolves after apply: %v", d, err)
			}
		}
		for tag, d := range map[string]string{"v1.0.0": release, "env-staging": staging, "ddddddd": overlay, "fffffff": newest} {
			if got, err := c.Resolve(ctx, repo.Tag(tag)); err != nil || got != d {
				t.Errorf("kept tag %s = %s, %v; want %s", tag, got, err, d)
			}
		}
		for _, tag := range []string{"main", "pr-42", "eeeeeee"} {
			if _, err := c.Resolve(ctx, repo.Tag(tag)); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("tag %s of a deleted digest still resolves: %v", tag, err)
			}
		}
		// Exactly the kept tags remain: no stray tag, no tombstone, no fallback tag of a deleted subject.
		left, err := remote.List(repo, remote.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(left)
		if want := []string{"aaaaaaa", "ccccccc", "ddddddd", "env-staging", "fffffff", "v1.0.0"}; !slices.Equal(left, want) {
			t.Errorf("tags left = %v, want %v", left, want)
		}
		// A second run finds nothing more to delete.
		again, err := c.Retain(ctx, repo, registry.RetainOptions{Keep: 1, Protect: opts.Protect, Apply: true})
		if err != nil || len(again.Deleted) != 0 || len(again.Doomed()) != 0 {
			t.Errorf("second run = %+v, %v; want nothing to do", again, err)
		}
	})
}

func TestRetainIndex(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		reg := registrytest.Start(t, kind, registrytest.Options{})
		c := client(t, nil)
		repo := repoAt(t, reg.Host, "acme/multi")
		day := func(n int) time.Time { return time.Date(2026, 4, n, 0, 0, 0, 0, time.UTC) }
		index := func(created time.Time) v1.ImageIndex {
			amd, arm := image(t, 1, 256, created), image(t, 1, 256, created)
			cf, _ := arm.ConfigFile()
			cf = cf.DeepCopy()
			cf.Architecture = "arm64"
			arm, _ = mutate.ConfigFile(arm, cf)
			return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
				mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
				mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
		}
		old, cur := index(day(1)), index(day(2))
		set := func(commit string) tags.Set {
			s, err := tags.For(tags.Input{Commit: commit, Arches: []string{"amd64", "arm64"}})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		po, err := c.Push(ctx, registry.Artifact{Index: old}, repo, set("1111111"))
		if err != nil {
			t.Fatal(err)
		}
		pc, err := c.Push(ctx, registry.Artifact{Index: cur}, repo, set("2222222"))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Resolve(ctx, repo.Tag("2222222-arm64")); got != pc.Platforms["arm64"] {
			t.Fatalf("per-arch tag names %s, want the arm64 image %s", got, pc.Platforms["arm64"])
		}
		res, err := c.Retain(ctx, repo, registry.RetainOptions{Keep: 1, Apply: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{po.Digest, po.Platforms["amd64"], po.Platforms["arm64"]} {
			if _, err := c.Resolve(ctx, repo.Digest(d)); !errors.Is(err, registry.ErrNotFound) {
				t.Errorf("old index part %s survived: %v (deleted %v)", d, err, res.Deleted)
			}
		}
		for _, d := range []string{pc.Digest, pc.Platforms["amd64"], pc.Platforms["arm64"]} {
			if _, err := c.Resolve(ctx, repo.Digest(d)); err != nil {
				t.Errorf("kept index part %s is gone: %v", d, err)
			}
		}
	})
}

func TestPushReportsProgress(t *testing.T) {
	reg := registrytest.Start(t, registrytest.V3, registrytest.Options{})
	var last, total int64
	c := client(t, nil, registry.WithProgress(func(done, all int64) { last, total = done, all }))
	amd, arm := image(t, 2, 8<<10, time.Now()), image(t, 2, 8<<10, time.Now())
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}})
	s, _ := tags.For(tags.Input{Commit: sha, Arches: []string{"amd64", "arm64"}})
	if _, err := c.Push(ctx, registry.Artifact{Index: idx}, repoAt(t, reg.Host, "acme/progress"), s); err != nil {
		t.Fatal(err)
	}
	if total == 0 || last != total {
		t.Errorf("progress ended at %d of %d bytes", last, total)
	}
}
