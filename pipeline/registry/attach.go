package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Attach stores a small document as an OCI artifact that refers to subject:
// through the referrers API where the registry has it, and go-containerregistry's
// sha256-<digest> fallback tag where it does not. It returns the artifact's digest.
func (c *Client) Attach(ctx context.Context, subject name.Digest, artifactType string, data []byte, annotations map[string]string) (string, error) {
	opts, err := c.remote(ctx, subject.Context(), scopePush)
	if err != nil {
		return "", err
	}
	desc, err := remote.Head(subject, opts...)
	if err != nil {
		return "", classify(fmt.Sprintf("attaching to %s", subject), err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	// The type goes in artifactType (OCI 1.1) and in the config media type,
	// which registries that predate artifactType report instead.
	img = mutate.ConfigMediaType(img, types.MediaType(artifactType))
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(data, types.MediaType(artifactType))})
	if err != nil {
		return "", err
	}
	if len(annotations) > 0 {
		img = mutate.Annotations(img, annotations).(v1.Image)
	}
	img = mutate.Subject(img, v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}).(v1.Image)
	art := artifactTyped{Image: img, artifactType: artifactType}
	d, err := art.Digest()
	if err != nil {
		return "", err
	}
	if err := remote.Write(subject.Context().Digest(d.String()), art, opts...); err != nil {
		return "", classify(fmt.Sprintf("attaching %s to %s", artifactType, subject), err)
	}
	return d.String(), nil
}

// Attached returns the documents of one artifact type attached to subject,
// newest last as the registry lists them.
func (c *Client) Attached(ctx context.Context, subject name.Digest, artifactType string) ([][]byte, error) {
	opts, err := c.remote(ctx, subject.Context(), scopePull)
	if err != nil {
		return nil, err
	}
	idx, err := remote.Referrers(subject, append(opts, remote.WithFilter("artifactType", artifactType))...)
	if err != nil {
		return nil, classify(fmt.Sprintf("listing what is attached to %s", subject), err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, m := range im.Manifests {
		if m.ArtifactType != artifactType {
			continue // registries without filtering return everything
		}
		img, err := remote.Image(subject.Context().Digest(m.Digest.String()), opts...)
		if err != nil {
			return nil, classify(fmt.Sprintf("reading the %s attached to %s", artifactType, subject), err)
		}
		ls, err := img.Layers()
		if err != nil || len(ls) == 0 {
			return nil, fmt.Errorf("reading the %s attached to %s: no content", artifactType, subject)
		}
		rc, err := ls[0].Compressed()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(rc, 16<<20))
		rc.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, data)
	}
	return out, nil
}

// artifactTyped sets the manifest's artifactType, which go-containerregistry's
// mutate package does not: referrers are filtered by it.
type artifactTyped struct {
	v1.Image
	artifactType string
}

func (a artifactTyped) ArtifactType() (string, error) { return a.artifactType, nil }

func (a artifactTyped) Manifest() (*v1.Manifest, error) {
	m, err := a.Image.Manifest()
	if err != nil {
		return nil, err
	}
	m = m.DeepCopy()
	m.ArtifactType = a.artifactType
	return m, nil
}

func (a artifactTyped) RawManifest() ([]byte, error) {
	m, err := a.Manifest()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (a artifactTyped) Digest() (v1.Hash, error) {
	raw, err := a.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	return h, err
}

func (a artifactTyped) Size() (int64, error) {
	raw, err := a.RawManifest()
	return int64(len(raw)), err
}

// AppendLayer adds a layer to the image at tag, creating the image when the
// tag does not exist yet: how cosign keeps signatures and attestations
// (sha256-<digest>.sig / .att), one layer each.
func (c *Client) AppendLayer(ctx context.Context, tag name.Tag, layer v1.Layer, annotations map[string]string) error {
	opts, err := c.remote(ctx, tag.Context(), scopePush)
	if err != nil {
		return err
	}
	base, err := remote.Image(tag, opts...)
	if err != nil {
		if !isNotFound(classify("", err)) {
			return classify(fmt.Sprintf("reading %s", tag), err)
		}
		base = mutate.MediaType(empty.Image, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.Append(base, mutate.Addendum{Layer: layer, Annotations: annotations})
	if err != nil {
		return err
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		return classify(fmt.Sprintf("writing %s", tag), err)
	}
	return nil
}
