// Package build builds Go services into OCI images without a container
// engine: go build for each platform, the binary in one layer on a base
// image, the plan's labels in the config. The same source at the same commit
// gives the same digest.
package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/registry"
)

// ErrNotMain reports a source directory that is not a main package.
var ErrNotMain = errors.New("not a main package")

// DefaultUser is the numeric nonroot user (distroless' nonroot), so the image
// never runs as root by accident, with or without /etc/passwd.
const DefaultUser = "65532:65532"

// Base returns the base image for a platform; nil means none (scratch).
type Base func(ctx context.Context, p v1.Platform) (v1.Image, error)

// Options say what to build.
type Options struct {
	Source    string            // directory of the main package
	Name      string            // binary name; default the directory's base name
	Platforms []string          // os/arch[/variant]; default linux/amd64
	Base      Base              // nil: scratch
	Labels    map[string]string // image labels and manifest annotations
	Created   time.Time         // the commit time: every timestamp in the image
	LDFlags   []string          // extra -ldflags, e.g. -X main.version=v1.4.2
	User      string            // default DefaultUser
	WorkDir   string            // default /
	Env       []string          // extra environment for go build (GOFLAGS, GOPROXY…)
	Go        string            // the go command; default "go"
}

// FromPlan is how a plan's build is made: its source directory, the
// service as the binary's name, its labels, the commit time for every
// timestamp, and the version (or, without one, the short SHA) and commit
// stamped into main.version and main.commit.
func FromPlan(p *plan.Plan, platforms []string, base Base) Options {
	version := p.Version
	if version == "" {
		version = p.Source.ShortSHA()
	}
	return Options{Source: p.Dir, Name: p.Service, Platforms: platforms, Base: base, Labels: p.Labels, Created: p.Source.Time,
		LDFlags: []string{"-X main.version=" + version, "-X main.commit=" + p.Source.Commit}}
}

// Binary is where the binary goes in the image.
func (o Options) binaryPath() string { return "/app/" + o.name() }

func (o Options) name() string {
	if o.Name != "" {
		return o.Name
	}
	abs, err := filepath.Abs(o.Source)
	if err != nil {
		return "app"
	}
	return filepath.Base(abs)
}

// Build builds the image for every platform: one platform gives an image,
// several an OCI index of them.
func Build(ctx context.Context, o Options) (registry.Artifact, error) {
	if len(o.Platforms) == 0 {
		o.Platforms = []string{"linux/amd64"}
	}
	if err := checkMain(ctx, o); err != nil {
		return registry.Artifact{}, err
	}
	var imgs []v1.Image
	var plats []v1.Platform
	for _, p := range o.Platforms {
		plat, err := v1.ParsePlatform(p)
		if err != nil || plat.OS == "" || plat.Architecture == "" {
			return registry.Artifact{}, fmt.Errorf("building %s: platform %q: want os/arch[/variant]", o.Source, p)
		}
		img, err := buildOne(ctx, o, *plat)
		if err != nil {
			return registry.Artifact{}, err
		}
		imgs, plats = append(imgs, img), append(plats, *plat)
	}
	if len(imgs) == 1 {
		return registry.Artifact{Image: imgs[0]}, nil
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, img := range imgs {
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &plats[i]}})
	}
	if len(o.Labels) > 0 {
		idx = mutate.Annotations(idx, o.Labels).(v1.ImageIndex)
	}
	return registry.Artifact{Index: idx}, nil
}

// checkMain refuses a directory that is not a main package, before building.
func checkMain(ctx context.Context, o Options) error {
	cmd := exec.CommandContext(ctx, goCmd(o), "list", "-f", "{{.Name}}", ".")
	cmd.Dir = o.Source
	cmd.Env = append(os.Environ(), o.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building %s: go list: %w\n%s", o.Source, err, strings.TrimSpace(string(out)))
	}
	if name := strings.TrimSpace(string(out)); name != "main" {
		hint := "point --source at the directory of a command"
		if _, err := os.Stat(filepath.Join(o.Source, "Dockerfile")); err == nil {
			hint = "it has a Dockerfile: Dockerfile builds need a container engine, use the Dagger module (dagger call build)"
		}
		return fmt.Errorf("building %s: %w (package %s): %s", o.Source, ErrNotMain, name, hint)
	}
	return nil
}

func goCmd(o Options) string {
	if o.Go != "" {
		return o.Go
	}
	return "go"
}

func buildOne(ctx context.Context, o Options, p v1.Platform) (v1.Image, error) {
	tmp, err := os.MkdirTemp("", "tagflow-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, o.name())
	ldflags := append([]string{"-s", "-w", "-buildid="}, o.LDFlags...)
	cmd := exec.CommandContext(ctx, goCmd(o), "build", "-trimpath", "-ldflags", strings.Join(ldflags, " "), "-o", bin, ".")
	cmd.Dir = o.Source
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Architecture == "arm" && p.Variant != "" {
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	}
	cmd.Env = append(cmd.Env, o.Env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building %s for %s: go build: %w\n%s", o.Source, p, err, strings.TrimSpace(string(out)))
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	layer, err := binaryLayer(o.binaryPath(), data, o.Created)
	if err != nil {
		return nil, err
	}

	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	if o.Base != nil {
		b, err := o.Base(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("building %s for %s: base image: %w", o.Source, p, err)
		}
		if b != nil {
			base = b
		}
	}
	created := v1.Time{Time: o.Created.UTC()}
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: created, CreatedBy: "tagflow build " + o.binaryPath(), Comment: "go build -trimpath"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Config.Entrypoint = []string{o.binaryPath()}
	cf.Config.Cmd = nil
	cf.Config.User = orDefault(o.User, DefaultUser)
	cf.Config.WorkingDir = orDefault(o.WorkDir, "/")
	if cf.Config.Labels == nil {
		cf.Config.Labels = map[string]string{}
	}
	for k, v := range o.Labels {
		cf.Config.Labels[k] = v
	}
	if !hasEnv(cf.Config.Env, "PATH") {
		cf.Config.Env = append(cf.Config.Env, "PATH=/app:/usr/local/bin:/usr/bin:/bin")
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	if len(o.Labels) > 0 {
		img = mutate.Annotations(img, o.Labels).(v1.Image)
	}
	return img, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// binaryLayer writes the binary and its parent directories into a gzipped
// tar whose every byte depends only on the binary, its path and the time:
// sorted entries, fixed owner, no host names, the gzip header without a
// name or time.
func binaryLayer(file string, data []byte, mtime time.Time) (v1.Layer, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mtime = mtime.UTC().Truncate(time.Second)
	dir := path.Dir(file)
	var dirs []string
	for d := dir; d != "/" && d != "."; d = path.Dir(d) {
		dirs = append([]string{d}, dirs...)
	}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(file, "/"), Mode: 0o755, Size: int64(len(data)), ModTime: mtime, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	// ggcr compresses deterministically (fixed level, zero header time).
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// Write saves an artifact as an OCI layout directory (any artifact) or, when
// path ends in .tar, a docker-archive tarball (one image only).
func Write(path string, a registry.Artifact) error {
	if strings.HasSuffix(path, ".tar") {
		if a.Image == nil {
			return fmt.Errorf("writing %s: a tarball holds one platform; write a multi-platform build to a directory (OCI layout)", path)
		}
		return tarball.WriteToFile(path, nil, a.Image)
	}
	if err := os.RemoveAll(path); err != nil {
		return err
	}
	p, err := layout.Write(path, empty.Index)
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", path, err)
	}
	if a.Index != nil {
		err = p.AppendIndex(a.Index)
	} else {
		err = p.AppendImage(a.Image)
	}
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", path, err)
	}
	return nil
}

// LayoutBase reads the base image for each platform from an OCI layout: an
// image, or the matching image of an index.
func LayoutBase(dir string) Base {
	return func(_ context.Context, p v1.Platform) (v1.Image, error) {
		a, err := registry.Load(dir)
		if err != nil {
			return nil, err
		}
		if a.Image != nil {
			return a.Image, nil
		}
		im, err := a.Index.IndexManifest()
		if err != nil {
			return nil, err
		}
		for _, d := range im.Manifests {
			if d.Platform != nil && d.Platform.Satisfies(p) {
				return a.Index.Image(d.Digest)
			}
		}
		return nil, fmt.Errorf("base %s has no image for %s", dir, p)
	}
}
