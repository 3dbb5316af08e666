package build_test

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/tagflow/tagflow/pipeline/build"
	"github.com/tagflow/tagflow/pipeline/labels"
	"github.com/tagflow/tagflow/pipeline/registry"
)

var ctx = context.Background()

const echo = "../../examples/echo-server"

var commitTime = time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)

func opts() build.Options {
	return build.Options{
		Source:  echo,
		Created: commitTime,
		Labels:  map[string]string{labels.Revision: "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", labels.Version: "v1.4.2"},
		LDFlags: []string{"-X main.version=v1.4.2", "-X main.commit=1a2b3c4"},
	}
}

func digest(t *testing.T, a registry.Artifact) string {
	t.Helper()
	d, err := a.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func TestBuildReproducible(t *testing.T) {
	a, err := build.Build(ctx, opts())
	if err != nil {
		t.Fatal(err)
	}
	// Touch the sources: file times must not matter, only content and commit time.
	src := t.TempDir()
	for _, f := range []string{"go.mod", "main.go", "VERSION"} {
		b, _ := os.ReadFile(filepath.Join(echo, f))
		os.WriteFile(filepath.Join(src, f), b, 0o644)
		os.Chtimes(filepath.Join(src, f), time.Now(), time.Now())
	}
	o := opts()
	o.Source, o.Name = src, "echo-server"
	b, err := build.Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if digest(t, a) != digest(t, b) {
		t.Errorf("same source, same commit, different digests: %s vs %s", digest(t, a), digest(t, b))
	}
	o.Created = commitTime.Add(time.Second)
	c, _ := build.Build(ctx, o)
	if digest(t, c) == digest(t, a) {
		t.Error("another commit time gave the same digest")
	}
}

func TestBuildConfig(t *testing.T) {
	a, err := build.Build(ctx, opts())
	if err != nil {
		t.Fatal(err)
	}
	cf, err := a.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != build.DefaultUser || strings.HasPrefix(cf.Config.User, "0") || cf.Config.User == "root" {
		t.Errorf("user = %q, want non-root %s", cf.Config.User, build.DefaultUser)
	}
	if cf.Config.Labels[labels.Revision] != opts().Labels[labels.Revision] || cf.Config.Labels[labels.Version] != "v1.4.2" {
		t.Errorf("labels = %v", cf.Config.Labels)
	}
	if !cf.Created.Time.Equal(commitTime) || cf.OS != "linux" || cf.Architecture != "amd64" {
		t.Errorf("created %v os %s arch %s", cf.Created, cf.OS, cf.Architecture)
	}
	if len(cf.Config.Entrypoint) != 1 || cf.Config.Entrypoint[0] != "/app/echo-server" {
		t.Errorf("entrypoint = %v", cf.Config.Entrypoint)
	}
	m, _ := a.Image.Manifest()
	if m.Annotations[labels.Revision] == "" || m.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Errorf("manifest %s annotations %v", m.MediaType, m.Annotations)
	}
	for _, h := range cf.History {
		if !h.Created.Time.Equal(commitTime) {
			t.Errorf("history entry at %v, want the commit time", h.Created)
		}
	}
}

// TestBuildRuns extracts the binary from the image and runs it: the version
// and commit stamped through ldflags must answer on /version.
func TestBuildRuns(t *testing.T) {
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("runs the linux/amd64 binary")
	}
	a, err := build.Build(ctx, opts())
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := a.Image.Layers()
	rc, err := ls[len(ls)-1].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	bin := filepath.Join(t.TempDir(), "echo-server")
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Uname != "" || !h.ModTime.Equal(commitTime) {
			t.Errorf("%s: uid %d uname %q mtime %v: host details leaked into the layer", h.Name, h.Uid, h.Uname, h.ModTime)
		}
		if h.Name == "app/echo-server" {
			f, _ := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			io.Copy(f, tr)
			f.Close()
		}
	}
	if strings.Join(names, ",") != "app/,app/echo-server" {
		t.Errorf("layer entries = %v", names)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-addr", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var got map[string]string
	for i := 0; i < 100; i++ {
		res, err := http.Get("http://" + addr + "/version")
		if err == nil {
			json.NewDecoder(res.Body).Decode(&got)
			res.Body.Close()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got["version"] != "v1.4.2" || got["commit"] != "1a2b3c4" {
		t.Errorf("the built server says %v, want v1.4.2 / 1a2b3c4", got)
	}
}

func TestBuildMultiArch(t *testing.T) {
	o := opts()
	o.Platforms = []string{"linux/amd64", "linux/arm64"}
	a, err := build.Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if a.Index == nil {
		t.Fatal("two platforms gave no index")
	}
	im, _ := a.Index.IndexManifest()
	if len(im.Manifests) != 2 || im.MediaType != "application/vnd.oci.image.index.v1+json" || im.Annotations[labels.Version] != "v1.4.2" {
		t.Fatalf("index = %+v", im)
	}
	plats, err := a.Platforms()
	if err != nil || len(plats) != 2 {
		t.Fatalf("platforms = %v, %v", plats, err)
	}
	for arch, img := range plats {
		cf, _ := img.ConfigFile()
		if cf.Architecture != arch {
			t.Errorf("%s image has arch %s", arch, cf.Architecture)
		}
	}
	// Round trip through a layout.
	dir := filepath.Join(t.TempDir(), "oci")
	if err := build.Write(dir, a); err != nil {
		t.Fatal(err)
	}
	back, err := registry.Load(dir)
	if err != nil || back.Index == nil || digest(t, back) != digest(t, a) {
		t.Errorf("layout round trip: %v, %v", back, err)
	}
	if err := build.Write(filepath.Join(t.TempDir(), "x.tar"), a); err == nil {
		t.Error("a multi-platform tarball was written")
	}
}

func TestBuildTarballAndBase(t *testing.T) {
	base, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	baseDir := filepath.Join(t.TempDir(), "base")
	if err := build.Write(baseDir, registry.Artifact{Image: base}); err != nil {
		t.Fatal(err)
	}
	o := opts()
	o.Base = build.LayoutBase(baseDir)
	a, err := build.Build(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	ls, _ := a.Image.Layers()
	bls, _ := base.Layers()
	if len(ls) != 3 {
		t.Fatalf("%d layers, want the base's 2 and the binary's", len(ls))
	}
	for i, l := range bls {
		d1, _ := l.Digest()
		d2, _ := ls[i].Digest()
		if d1 != d2 {
			t.Errorf("base layer %d changed", i)
		}
	}
	tarPath := filepath.Join(t.TempDir(), "echo.tar")
	if err := build.Write(tarPath, a); err != nil {
		t.Fatal(err)
	}
	// A docker-archive cannot hold the OCI manifest: reloaded, the image gets a
	// Docker-typed manifest, but its config and layers are the very same.
	back, err := registry.Load(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := a.Image.ConfigName()
	c2, _ := back.Image.ConfigName()
	bl, _ := back.Image.Layers()
	if c1 != c2 || len(bl) != len(ls) {
		t.Errorf("tarball round trip changed the config (%s → %s) or layers", c1, c2)
	}
	for i := range ls {
		d1, _ := ls[i].Digest()
		d2, _ := bl[i].Digest()
		if d1 != d2 {
			t.Errorf("layer %d changed in the tarball: %s → %s", i, d1, d2)
		}
	}
}

func TestBuildNotMain(t *testing.T) {
	o := opts()
	o.Source = "../labels"
	_, err := build.Build(ctx, o)
	if !errors.Is(err, build.ErrNotMain) || !strings.Contains(err.Error(), "package labels") {
		t.Errorf("Build(library) = %v, want ErrNotMain naming the package", err)
	}
	o.Platforms = []string{"linux"}
	o.Source = echo
	if _, err := build.Build(ctx, o); err == nil || !strings.Contains(err.Error(), `"linux"`) {
		t.Errorf("Build(bad platform) = %v", err)
	}
}
