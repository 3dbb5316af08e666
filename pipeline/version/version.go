// Package version resolves the semantic version of a build, from a VERSION
// file or from a release tag on HEAD, and computes the next version from
// conventional commits.
package version

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	modsemver "golang.org/x/mod/semver"

	"github.com/tagflow/tagflow/pipeline/source"
)

// From names where a version came from.
type From string

const (
	FromTag  From = "tag"  // a release tag on HEAD
	FromFile From = "file" // the VERSION file
)

// ErrInvalid reports text that is not a semantic version X.Y.Z[-pre][+build].
var ErrInvalid = errors.New("not a semantic version")

// Parse reads a version as people write it in a VERSION file: surrounding
// white space and one leading "v" are tolerated, the rest must be strict
// semver (so "1.2" and "01.2.3" are refused).
func Parse(s string) (*semver.Version, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimPrefix(t, "v")
	v, err := semver.StrictNewVersion(t)
	if err != nil {
		return nil, fmt.Errorf("parsing version %q: %w", s, ErrInvalid)
	}
	return v, nil
}

// FromTagName returns the version a git tag names, or nil when the tag is not
// a release tag: prefix followed by a canonical vX.Y.Z[-pre] (no shorthand
// like v1.2, no build metadata, as golang.org/x/mod/semver defines canonical).
func FromTagName(tag, prefix string) *semver.Version {
	rest, ok := strings.CutPrefix(tag, prefix)
	if !ok {
		return nil
	}
	// The canonical check wants a leading v; the prefix may already have eaten it.
	mod := rest
	if !strings.HasPrefix(mod, "v") {
		mod = "v" + mod
	}
	if !modsemver.IsValid(mod) || modsemver.Canonical(mod) != mod {
		return nil
	}
	v, err := semver.StrictNewVersion(strings.TrimPrefix(mod, "v"))
	if err != nil {
		return nil
	}
	return v
}

// Options say where versions live and which source wins.
type Options struct {
	File      string // name of the version file in the source directory; "" means VERSION
	TagPrefix string // prefix of release tags; "v" by default in config
	Prefer    From   // which source wins when both exist; FromTag when empty
}

// Resolution is what Resolve found.
type Resolution struct {
	Version *semver.Version // the chosen version; nil when neither source has one
	From    From            // where Version came from
	File    *semver.Version // the VERSION file's version, if any
	Tag     string          // the release tag on HEAD, if any
}

// MismatchError reports a VERSION file and a release tag that name different
// versions: a release cannot know which one the image is.
type MismatchError struct {
	File             string // path of the version file
	FileVersion, Tag string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("version mismatch: %s says %s but HEAD is tagged %s", e.File, e.FileVersion, e.Tag)
}

// Resolve finds the version of the source in dir at HEAD (described by info).
// Both sources are read; when both exist and differ, Resolve returns a
// *MismatchError together with the resolution, so callers that are not
// releasing may ignore it.
func Resolve(info source.Info, dir string, opts Options) (Resolution, error) {
	var res Resolution
	name := opts.File
	if name == "" {
		name = "VERSION"
	}
	path := filepath.Join(dir, name)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		v, err := Parse(string(data))
		if err != nil {
			return res, fmt.Errorf("reading %s: %w", path, err)
		}
		res.File = v
	case !errors.Is(err, os.ErrNotExist):
		return res, fmt.Errorf("reading %s: %w", path, err)
	}

	var tagged []*semver.Version
	byVersion := map[*semver.Version]string{}
	for _, t := range info.Tags {
		if v := FromTagName(t, opts.TagPrefix); v != nil {
			tagged = append(tagged, v)
			byVersion[v] = t
		}
	}
	var tagV *semver.Version
	if len(tagged) > 0 {
		// Several release tags on one commit: the highest names it.
		sort.Sort(sort.Reverse(semver.Collection(tagged)))
		tagV = tagged[0]
		res.Tag = byVersion[tagV]
	}

	switch {
	case tagV != nil && (res.File == nil || opts.Prefer != FromFile):
		res.Version, res.From = tagV, FromTag
	case res.File != nil:
		res.Version, res.From = res.File, FromFile
	}
	if tagV != nil && res.File != nil && !tagV.Equal(res.File) {
		return res, &MismatchError{File: path, FileVersion: res.File.String(), Tag: res.Tag}
	}
	return res, nil
}
