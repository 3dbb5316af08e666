// Package labels makes the OCI labels (and annotations) that trace an image
// back to its source.
package labels

import (
	"fmt"
	"maps"
	"strings"
	"time"
)

// The OCI image-spec annotation keys tagflow fills.
const (
	Revision = "org.opencontainers.image.revision"
	Source   = "org.opencontainers.image.source"
	Version  = "org.opencontainers.image.version"
	Created  = "org.opencontainers.image.created"
	Title    = "org.opencontainers.image.title"
)

// Reserved lists the keys tagflow computes; configuration cannot override them,
// or an image could claim a revision it was not built from.
var Reserved = []string{Revision, Source, Version, Created, Title}

// Input is what the labels are made of.
type Input struct {
	Commit  string            // full commit SHA
	Source  string            // repository URL
	Version string            // release tag (vX.Y.Z); empty when not a release
	Created time.Time         // commit time, so the same commit gives the same labels
	Title   string            // service name
	Extra   map[string]string // configured labels
}

// For returns the labels. Empty values are left out rather than written empty.
func For(in Input) map[string]string {
	out := maps.Clone(in.Extra)
	if out == nil {
		out = map[string]string{}
	}
	set := func(k, v string) {
		if v != "" {
			out[k] = v
		} else {
			delete(out, k)
		}
	}
	set(Revision, in.Commit)
	set(Source, in.Source)
	set(Version, in.Version)
	set(Title, in.Title)
	created := ""
	if !in.Created.IsZero() {
		created = in.Created.UTC().Format(time.RFC3339)
	}
	set(Created, created)
	return out
}

// Pairs splits KEY=VALUE arguments (labels, build arguments), refusing a
// malformed one by the argument's name.
func Pairs(arg string, in []string) ([][2]string, error) {
	var out [][2]string
	for _, s := range in {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s: %q is not KEY=VALUE", arg, s)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
