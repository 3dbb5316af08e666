package registry_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/registry"
)

var ctx = context.Background()

func TestPushRetagVerify(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		reg := registrytest.Start(t, kind, registrytest.Options{})
		proxy := registrytest.NewProxy(t, reg.URL())
		c := client(t, nil)
		repo := repoAt(t, proxy.Host, "acme/echo")

		img := image(t, 3, 64<<10, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		want := digestOf(t, img)
		a, err := registry.Load(writeLayout(t, img))
		if err != nil {
			t.Fatal(err)
		}
		set := tagSet(t, "1.4.2", "staging", sha)
		pushed, err := c.Push(ctx, a, repo, set)
		if err != nil {
			t.Fatal(err)
		}
		if pushed.Digest != want || len(pushed.References) != 3 || pushed.References[0] != repo.String()+":v1.4.2@"+want {
			t.Fatalf("Push = %+v, want digest %s on 3 tags", pushed, want)
		}
		reqs := proxy.Requests()
		// 3 layers + config: each HEADed, each uploaded once; one manifest PUT per tag.
		if got := count(reqs, "PUT manifest"); got != 3 {
			t.Errorf("manifest PUTs = %d, want 3 (%s)", got, proxy.Summary())
		}
		if got := count(reqs, "HEAD blob"); got != 4 {
			t.Errorf("blob HEADs = %d, want 4 (%s)", got, proxy.Summary())
		}
		if proxy.Uploaded() < 3*64<<10 {
			t.Errorf("uploaded %d bytes, want at least the 3 layers", proxy.Uploaded())
		}
		for _, tag := range set.Names() {
			got, err := c.Resolve(ctx, repo.Tag(tag))
			if err != nil || got != want {
				t.Errorf("Resolve(%s) = %s, %v; want %s", tag, got, err, want)
			}
		}

		// Re-push: nothing uploaded, same digest.
		proxy.Reset()
		again, err := c.Push(ctx, a, repo, set)
		if err != nil || again.Digest != want {
			t.Fatalf("re-push = %+v, %v", again, err)
		}
		if proxy.Uploaded() != 0 || count(proxy.Requests(), "POST blob-upload") != 0 {
			t.Errorf("re-push uploaded %d bytes (%s), want 0", proxy.Uploaded(), proxy.Summary())
		}

		// Promotion: env-prod by manifest copy, no blob traffic, same digest.
		proxy.Reset()
		src, _ := registry.ParseDigestRef(pushed.DigestRef())
		moved, err := c.Retag(ctx, src, "env-prod")
		if err != nil {
			t.Fatal(err)
		}
		if len(moved) != 1 || !moved[0].Changed || moved[0].From != "" || moved[0].To != want {
			t.Errorf("Retag = %+v", moved)
		}
		if n := len(proxy.Requests()); n > 3 || count(proxy.Requests(), "GET blob") != 0 || proxy.Uploaded() != 0 {
			t.Errorf("retag made %d requests (%s), %d blob bytes; want ≤ 3 and none", n, proxy.Summary(), proxy.Uploaded())
		}
		if got, _ := c.Resolve(ctx, repo.Tag("env-prod")); got != want {
			t.Errorf("env-prod = %s, want the tested digest %s", got, want)
		}
		// Re-run: nothing changes.
		moved, err = c.Retag(ctx, src, "env-prod")
		if err != nil || moved[0].Changed {
			t.Errorf("second Retag = %+v, %v; want unchanged", moved, err)
		}

		// Verify: env-prod matches the SHA tag; env-staging of another build does not.
		v, err := c.Verify(ctx, repo, "prod", sha)
		if err != nil || !v.Match || v.EnvDigest != want || v.SHADigest != want {
			t.Errorf("Verify(prod) = %+v, %v", v, err)
		}
		other := image(t, 1, 1024, time.Now())
		b, _ := registry.Load(writeTarball(t, other))
		if _, err := c.Push(ctx, b, repo, tagSet(t, "", "dev", "ffffffff")); err != nil {
			t.Fatal(err)
		}
		od, _ := registry.ParseDigestRef(repo.String() + "@" + digestOf(t, other))
		if _, err := c.Retag(ctx, od, "env-prod"); err != nil {
			t.Fatal(err)
		}
		v, err = c.Verify(ctx, repo, "prod", sha[:7])
		if err != nil || v.Match || v.EnvDigest != digestOf(t, other) || v.SHADigest != want {
			t.Errorf("Verify after drift = %+v, %v; want a mismatch naming both digests", v, err)
		}
		if _, err := c.Verify(ctx, repo, "prod", "0000000"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Verify(unknown sha) = %v, want ErrNotFound", err)
		}

		// Immutable tags never move: not by push, not by retag.
		var ie *registry.ImmutableError
		if _, err := c.Push(ctx, b, repo, set); !errors.As(err, &ie) || ie.Current != want {
			t.Errorf("push of another image under the same SHA tag = %v, want ImmutableError", err)
		}
		if _, err := c.Retag(ctx, od, "v1.4.2"); !errors.As(err, &ie) || !strings.Contains(err.Error(), "v1.4.2") {
			t.Errorf("retag of v1.4.2 = %v, want ImmutableError", err)
		}
		if got, _ := c.Resolve(ctx, repo.Tag("v1.4.2")); got != want {
			t.Errorf("v1.4.2 moved to %s", got)
		}
		// A digest that does not exist is a clear not-found.
		gone, _ := registry.ParseDigestRef(repo.String() + "@sha256:" + strings.Repeat("0", 64))
		if _, err := c.Retag(ctx, gone, "env-prod"); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Retag(missing digest) = %v, want ErrNotFound", err)
		}
	})
}

func TestAuthAndTLS(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		const user, pass = "ci", "s3cret-Pa55word"
		reg := registrytest.Start(t, kind, registrytest.Options{TLS: true, User: user, Password: pass})
		img := image(t, 1, 4096, time.Now())
		a, _ := registry.Load(writeLayout(t, img))
		repo := repoAt(t, reg.Host, "acme/auth")
		set := tagSet(t, "", "dev", sha)

		// Right password, CA trusted.
		if _, err := client(t, reg, registry.WithBasicAuth(user, pass)).Push(ctx, a, repo, set); err != nil {
			t.Fatalf("push with credentials: %v", err)
		}
		// Wrong password: a clear error, and the secret in no message.
		wrong := "not-" + pass
		_, err := client(t, reg, registry.WithBasicAuth(user, wrong)).Push(ctx, a, repo, set)
		if !errors.Is(err, registry.ErrUnauthorized) {
			t.Fatalf("push with a wrong password = %v, want ErrUnauthorized", err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pass) || !strings.Contains(err.Error(), reg.Host) {
			t.Errorf("error %q leaks the password or does not name the registry", err)
		}
		// No CA: TLS verification fails, clearly.
		noCA, err := registry.New(registry.WithBasicAuth(user, pass), registry.WithRetry(1, 0))
		if err != nil {
			t.Fatal(err)
		}
		_, err = noCA.Push(ctx, a, repo, set)
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("push without the CA = %v, want a certificate error", err)
		}
	})
}

func TestRetryAfter(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		reg := registrytest.Start(t, kind, registrytest.Options{})
		proxy := registrytest.NewProxy(t, reg.URL())
		var throttled atomic.Int32
		proxy.Fault(func(r *http.Request) (int, http.Header, bool) {
			// The first two manifest writes are throttled with Retry-After.
			if r.Method == http.MethodPut && registrytest.Class(r.URL.Path) == "manifest" && throttled.Add(1) <= 2 {
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, true
			}
			return 0, nil, false
		})
		a, _ := registry.Load(writeLayout(t, image(t, 1, 1024, time.Now())))
		start := time.Now()
		pushed, err := client(t, nil, registry.WithRetry(4, 5*time.Second)).Push(ctx, a, repoAt(t, proxy.Host, "acme/throttled"), tagSet(t, "", "dev", sha))
		if err != nil {
			t.Fatalf("push through 429s: %v", err)
		}
		if throttled.Load() < 3 || time.Since(start) < time.Second {
			t.Errorf("throttled %d times in %s: Retry-After was not honoured", throttled.Load(), time.Since(start))
		}
		if got, _ := client(t, nil).Resolve(ctx, repoAt(t, proxy.Host, "acme/throttled").Tag("env-dev")); got != pushed.Digest {
			t.Errorf("env-dev = %s after the retried push, want %s", got, pushed.Digest)
		}

		// A Retry-After longer than we wait ends the retries with the registry's answer.
		proxy.Fault(func(r *http.Request) (int, http.Header, bool) {
			return http.StatusTooManyRequests, http.Header{"Retry-After": {"3600"}}, true
		})
		_, err = client(t, nil).Resolve(ctx, repoAt(t, proxy.Host, "acme/other").Tag("env-dev"))
		if err == nil || !strings.Contains(err.Error(), "429") {
			t.Errorf("resolve against a registry asking for an hour = %v, want the 429 reported", err)
		}
	})
}

func TestRegistryDiesMidPush(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		reg := registrytest.Start(t, kind, registrytest.Options{})
		proxy := registrytest.NewProxy(t, reg.URL())
		var uploads atomic.Int32
		proxy.Fault(func(r *http.Request) (int, http.Header, bool) {
			if r.Method == http.MethodPost && registrytest.Class(r.URL.Path) == "blob-upload" && uploads.Add(1) == 3 {
				reg.Stop() // the registry crashes during the third blob upload
			}
			return 0, nil, false
		})
		img := image(t, 4, 32<<10, time.Now())
		a, _ := registry.Load(writeLayout(t, img))
		repo := repoAt(t, proxy.Host, "acme/crash")
		set := tagSet(t, "", "dev", sha)
		c := client(t, nil, registry.WithRetry(2, time.Second), registry.WithJobs(1))
		_, err := c.Push(ctx, a, repo, set)
		if err == nil || !strings.Contains(err.Error(), "pushing "+repo.String()) {
			t.Fatalf("push into a dead registry = %v, want an error naming the repository", err)
		}
		proxy.Fault(nil)
		reg.Restart()
		proxy.Reset()
		pushed, err := client(t, nil).Push(ctx, a, repo, set)
		if err != nil || pushed.Digest != digestOf(t, img) {
			t.Fatalf("re-run after restart = %+v, %v", pushed, err)
		}
		if got := count(proxy.Requests(), "POST blob-upload"); got >= 5 {
			t.Errorf("re-run uploaded %d blobs, want fewer than all 5: the ones that made it are skipped (%s)", got, proxy.Summary())
		}
	})
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for name, path := range map[string]string{
		"missing":        dir + "/nope.tar",
		"not a layout":   dir,
		"not a tarball":  writeFile(t, dir+"/garbage.tar", "this is not a tar archive"),
		"corrupt layout": corruptLayout(t),
	} {
		if _, err := registry.Load(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%s) = %v, want an error naming %s", name, err, path)
		}
	}
}

func TestPushMountsSharedLayers(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		reg := registrytest.Start(t, kind, registrytest.Options{})
		proxy := registrytest.NewProxy(t, reg.URL())
		c := client(t, nil)
		base := image(t, 3, 64<<10, time.Now())
		auth, media := repoAt(t, proxy.Host, "acme/forward-auth"), repoAt(t, proxy.Host, "acme/ingest")
		a, _ := registry.Load(writeLayout(t, base))
		if _, err := c.Push(ctx, a, auth, tagSet(t, "", "dev", sha)); err != nil {
			t.Fatal(err)
		}
		// Another service on the same base: only its own layer travels.
		extra, err := random.Layer(8<<10, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		derived, err := mutate.AppendLayers(base, extra)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := registry.Load(writeLayout(t, derived))
		proxy.Reset()
		pushed, err := c.Push(ctx, b, media, tagSet(t, "", "dev", "ffffffff"), registry.MountFrom(auth))
		if err != nil {
			t.Fatal(err)
		}
		if pushed.Digest != digestOf(t, derived) {
			t.Errorf("mounting changed the digest: %s, want %s", pushed.Digest, digestOf(t, derived))
		}
		if up := proxy.Uploaded(); up >= 64<<10 {
			t.Errorf("uploaded %d bytes: the 3 shared 64 KiB layers should have been mounted (%s)", up, proxy.Summary())
		}
		if got, err := c.Resolve(ctx, media.Tag("env-dev")); err != nil || got != pushed.Digest {
			t.Errorf("env-dev = %s, %v", got, err)
		}
	})
}

func TestAttach(t *testing.T) {
	each(t, func(t *testing.T, kind registrytest.Kind) {
		reg := registrytest.Start(t, kind, registrytest.Options{})
		c := client(t, nil)
		repo := repoAt(t, reg.Host, "acme/attached")
		img := image(t, 1, 1024, time.Now())
		a, _ := registry.Load(writeLayout(t, img))
		pushed, err := c.Push(ctx, a, repo, tagSet(t, "", "dev", sha))
		if err != nil {
			t.Fatal(err)
		}
		subject, _ := registry.ParseDigestRef(pushed.DigestRef())
		const kindA, kindB = "application/vnd.tagflow.test.a+json", "application/vnd.tagflow.test.b+json"
		if _, err := c.Attach(ctx, subject, kindA, []byte(`{"n":1}`), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Attach(ctx, subject, kindB, []byte(`{"n":2}`), nil); err != nil {
			t.Fatal(err)
		}
		got, err := c.Attached(ctx, subject, kindA)
		if err != nil || len(got) != 1 || string(got[0]) != `{"n":1}` {
			t.Errorf("Attached(a) = %q, %v", got, err)
		}
		// The subject is untouched: same digest under its tags.
		if d, _ := c.Resolve(ctx, repo.Tag("env-dev")); d != pushed.Digest {
			t.Errorf("attaching moved env-dev to %s", d)
		}
		other, _ := registry.ParseDigestRef(repo.String() + "@" + digestOf(t, image(t, 1, 64, time.Now())))
		if _, err := c.Attach(ctx, other, kindA, []byte(`{}`), nil); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Attach to a missing subject = %v", err)
		}
	})
}

func TestEmbeddedPersists(t *testing.T) {
	dir := t.TempDir()
	e, err := registry.Serve(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, nil)
	img := image(t, 2, 4096, time.Now())
	a, _ := registry.Load(writeLayout(t, img))
	pushed, err := c.Push(ctx, a, repoAt(t, e.Host, "echo-server"), tagSet(t, "1.0.0", "dev", sha))
	if err != nil {
		t.Fatal(err)
	}
	subject, _ := registry.ParseDigestRef(pushed.DigestRef())
	if _, err := c.Attach(ctx, subject, "application/vnd.tagflow.test+json", []byte(`{"ok":true}`), nil); err != nil {
		t.Fatal(err)
	}
	e.Close()

	// A new process: another port, the same images.
	e2, err := registry.Serve(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	c2 := client(t, nil)
	repo := repoAt(t, e2.Host, "echo-server")
	for _, tag := range []string{"v1.0.0", "env-dev", sha[:7]} {
		if got, err := c2.Resolve(ctx, repo.Tag(tag)); err != nil || got != pushed.Digest {
			t.Errorf("after restart %s = %s, %v; want %s", tag, got, err, pushed.Digest)
		}
	}
	// Blobs are there too: the image reads whole.
	back, err := c2.Image(ctx, repo.Digest(pushed.Digest), v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := back.Layers()
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
	}
	docs, err := c2.Attached(ctx, repo.Digest(pushed.Digest), "application/vnd.tagflow.test+json")
	if err != nil || len(docs) != 1 {
		t.Errorf("attached after restart = %q, %v", docs, err)
	}
	// Moving a tag persists too.
	other := image(t, 1, 512, time.Now())
	b, _ := registry.Load(writeLayout(t, other))
	if _, err := c2.Push(ctx, b, repo, tagSet(t, "", "staging", "ffffffff")); err != nil {
		t.Fatal(err)
	}
	od, _ := registry.ParseDigestRef(repo.String() + "@" + digestOf(t, other))
	if _, err := c2.Retag(ctx, od, "env-dev"); err != nil {
		t.Fatal(err)
	}
	e2.Close()
	e3, _ := registry.Serve(dir)
	defer e3.Close()
	if got, _ := client(t, nil).Resolve(ctx, repoAt(t, e3.Host, "echo-server").Tag("env-dev")); got != digestOf(t, other) {
		t.Errorf("moved env-dev after restart = %s, want %s", got, digestOf(t, other))
	}
}
