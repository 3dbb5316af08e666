package registry_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

const sha = "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"

// image makes a random image created at the given time.
func image(t testing.TB, layers int, size int64, created time.Time) v1.Image {
	t.Helper()
	img, err := random.Image(size, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.Architecture, cf.OS = "amd64", "linux"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// writeLayout writes img as an OCI layout directory.
func writeLayout(t testing.TB, img v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeTarball writes img as a docker-archive tarball.
func writeTarball(t testing.TB, img v1.Image) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "image.tar")
	ref, _ := name.NewTag("example.invalid/image:build")
	if err := tarball.WriteToFile(path, ref, img); err != nil {
		t.Fatal(err)
	}
	return path
}

func tagSet(t testing.TB, version, env string, commit string) tags.Set {
	t.Helper()
	in := tags.Input{Env: env, Commit: commit}
	if version != "" {
		in.Version = mustVersion(t, version)
	}
	s, err := tags.For(in)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func repoAt(t testing.TB, host, service string) name.Repository {
	t.Helper()
	r, err := registry.ParseRepository(host + "/" + service)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// client makes a client for a test registry: fast retries, CA trusted.
func client(t testing.TB, reg *registrytest.Registry, opts ...registry.Option) *registry.Client {
	t.Helper()
	base := []registry.Option{registry.WithRetry(3, time.Second), registry.WithBackoff(10 * time.Millisecond)}
	if reg != nil && reg.CAFile != "" {
		base = append(base, registry.WithCAFile(reg.CAFile))
	}
	c, err := registry.New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func digestOf(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func count(reqs []string, prefix string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

// each runs f as a subtest against every real registry.
func each(t *testing.T, f func(t *testing.T, kind registrytest.Kind)) {
	for _, k := range registrytest.Kinds {
		t.Run(string(k), func(t *testing.T) {
			t.Parallel()
			f(t, k)
		})
	}
}

func mustVersion(t testing.TB, s string) *semver.Version {
	t.Helper()
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
