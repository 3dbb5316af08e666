package registry

import (
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushOption tunes one push.
type PushOption func(*pushOptions)

type pushOptions struct {
	mountFrom *name.Repository
}

// MountFrom offers the registry to mount layers from another repository of
// the same registry instead of uploading them: services of one organisation
// share base layers. The offer rides on the upload request that is sent
// anyway, so it costs nothing; a registry that does not have the blob there
// (or does not mount) answers with a normal upload.
func MountFrom(repo name.Repository) PushOption {
	return func(o *pushOptions) { o.mountFrom = &repo }
}

// mountable makes every layer of an artifact mountable from repo.
func mountable(a Artifact, from name.Repository) Artifact {
	if a.Index != nil {
		return Artifact{Index: mountIndex{index: a.Index, from: from}}
	}
	return Artifact{Image: mountImage{Image: a.Image, from: from}}
}

type mountImage struct {
	v1.Image
	from name.Repository
}

func (m mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return nil, err
		}
		out[i] = &remote.MountableLayer{Layer: l, Reference: m.from.Digest(d.String())}
	}
	return out, nil
}

// index names the embedded field: v1.ImageIndex has a method of that name.
type index = v1.ImageIndex

type mountIndex struct {
	index
	from name.Repository
}

func (m mountIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := m.index.Image(h)
	if err != nil {
		return nil, err
	}
	return mountImage{Image: img, from: m.from}, nil
}
