package registry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/tagflow/tagflow/pipeline/tags"
)

// ErrBadImage reports an image input that cannot be read as one.
var ErrBadImage = errors.New("not a readable image")

// Artifact is what gets pushed: one image, or an index of per-platform images.
type Artifact struct {
	Image v1.Image
	Index v1.ImageIndex
}

func (a Artifact) taggable() remote.Taggable {
	if a.Index != nil {
		return a.Index
	}
	return a.Image
}

// Digest is the digest of the image or index manifest.
func (a Artifact) Digest() (v1.Hash, error) {
	if a.Index != nil {
		return a.Index.Digest()
	}
	return a.Image.Digest()
}

// Platforms maps each arch suffix (tags.ArchSuffix) to its image, for an index.
func (a Artifact) Platforms() (map[string]v1.Image, error) {
	if a.Index == nil {
		return nil, nil
	}
	im, err := a.Index.IndexManifest()
	if err != nil {
		return nil, err
	}
	out := map[string]v1.Image{}
	for _, d := range im.Manifests {
		if d.Platform == nil || !d.MediaType.IsImage() {
			continue // attestations and other non-platform entries
		}
		suffix, err := tags.ArchSuffix(d.Platform.OS + "/" + d.Platform.Architecture + variantPath(d.Platform.Variant))
		if err != nil {
			return nil, err
		}
		img, err := a.Index.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		out[suffix] = img
	}
	return out, nil
}

func variantPath(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

// Load reads an image from an OCI layout directory or a docker-archive
// tarball (docker save, ko, buildah and Dagger's export write these).
// A layout holding one image gives that image; one holding an index gives
// the index; one listing several platform images directly is pushed as an
// index of them.
func Load(path string) (Artifact, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Artifact{}, fmt.Errorf("loading image %s: %w", path, err)
	}
	if !st.IsDir() {
		img, err := tarball.ImageFromPath(path, nil)
		if err != nil {
			return Artifact{}, fmt.Errorf("loading image %s as a docker-archive tarball: %w: %w", path, ErrBadImage, err)
		}
		if _, err := img.Manifest(); err != nil {
			return Artifact{}, fmt.Errorf("loading image %s: %w: %w", path, ErrBadImage, err)
		}
		return Artifact{Image: img}, nil
	}
	if _, err := os.Stat(filepath.Join(path, "index.json")); err != nil {
		return Artifact{}, fmt.Errorf("loading image %s: %w: a directory must be an OCI layout (no index.json)", path, ErrBadImage)
	}
	idx, err := layout.ImageIndexFromPath(path)
	if err != nil {
		return Artifact{}, fmt.Errorf("loading OCI layout %s: %w: %w", path, ErrBadImage, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return Artifact{}, fmt.Errorf("loading OCI layout %s: %w: %w", path, ErrBadImage, err)
	}
	var a Artifact
	switch {
	case len(im.Manifests) == 0:
		return Artifact{}, fmt.Errorf("loading OCI layout %s: %w: index.json lists no images", path, ErrBadImage)
	case len(im.Manifests) > 1:
		a.Index = idx
	case im.Manifests[0].MediaType.IsIndex():
		a.Index, err = idx.ImageIndex(im.Manifests[0].Digest)
	case im.Manifests[0].MediaType.IsImage() || im.Manifests[0].MediaType == types.MediaType(""):
		a.Image, err = idx.Image(im.Manifests[0].Digest)
	default:
		return Artifact{}, fmt.Errorf("loading OCI layout %s: %w: media type %s", path, ErrBadImage, im.Manifests[0].MediaType)
	}
	if err != nil {
		return Artifact{}, fmt.Errorf("loading OCI layout %s: %w: %w", path, ErrBadImage, err)
	}
	if err := validate(a); err != nil {
		return Artifact{}, fmt.Errorf("loading OCI layout %s: %w: %w", path, ErrBadImage, err)
	}
	return a, nil
}

// validate reads every manifest and config so a corrupt input fails here,
// before anything is pushed, not halfway through a push.
func validate(a Artifact) error {
	if a.Index == nil {
		_, err := a.Image.ConfigFile()
		return err
	}
	im, err := a.Index.IndexManifest()
	if err != nil {
		return err
	}
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() {
			continue
		}
		img, err := a.Index.Image(d.Digest)
		if err != nil {
			return err
		}
		if _, err := img.ConfigFile(); err != nil {
			return err
		}
	}
	return nil
}
