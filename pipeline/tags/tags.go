// Package tags builds the tag set of one build and classifies tag names.
//
// A build carries, in this order: vX.Y.Z when it is a release, env-<env> for
// its target environment, the 7-character short SHA of its commit always, and
// latest only when asked for. A multi-arch build adds per-platform tags with an
// arch suffix (v1.4.2-amd64, 1a2b3c4-arm64) to the immutable tags; the plain
// tags name the index.
package tags

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/tagflow/tagflow/pipeline/version"
)

// Kind is what a tag means.
type Kind string

const (
	Version Kind = "version" // vX.Y.Z: immutable, a release
	Env     Kind = "env"     // env-<env>: mutable, the image an environment runs
	SHA     Kind = "sha"     // the 7-char short commit SHA: immutable, every build
	Latest  Kind = "latest"  // latest: local and dev convenience only
	Other   Kind = "other"   // anything else; tagflow never emits one
)

// LatestName is the one tag name of kind Latest.
const LatestName = "latest"

// EnvPrefix starts every environment channel tag.
const EnvPrefix = "env-"

// ShortLen is the length of the SHA tag.
const ShortLen = 7

// Tag is one tag name and what it means.
type Tag struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	Arch string `json:"arch,omitempty"` // the platform suffix of a per-arch tag; empty for a plain tag
}

// Immutable reports whether a tag may never move to another digest once set.
func (t Tag) Immutable() bool { return t.Kind == Version || t.Kind == SHA }

// Set is the ordered tag set of one build.
type Set []Tag

// Names lists the tag names in order.
func (s Set) Names() []string {
	out := make([]string, len(s))
	for i, t := range s {
		out[i] = t.Name
	}
	return out
}

// Plain lists the tags without an arch suffix: the ones naming the image (or index).
func (s Set) Plain() Set {
	var out Set
	for _, t := range s {
		if t.Arch == "" {
			out = append(out, t)
		}
	}
	return out
}

// ForArch lists the per-arch tags of one arch suffix.
func (s Set) ForArch(arch string) Set {
	var out Set
	for _, t := range s {
		if t.Arch == arch && arch != "" {
			out = append(out, t)
		}
	}
	return out
}

// Find returns the first plain tag of kind k.
func (s Set) Find(k Kind) (Tag, bool) {
	for _, t := range s {
		if t.Kind == k && t.Arch == "" {
			return t, true
		}
	}
	return Tag{}, false
}

// Input is what a tag set depends on.
type Input struct {
	Version *semver.Version // the release version; nil when the build is not a release
	Env     string          // the target environment; empty for none
	Commit  string          // the commit SHA, full or at least 7 hex characters
	Latest  bool            // add latest (policy decides whether that is allowed)
	Arches  []string        // arch suffixes of a multi-arch build (see ArchSuffix); none for one platform
}

// ErrBadCommit reports a commit that cannot give a short SHA tag.
var ErrBadCommit = errors.New("commit must be at least 7 hexadecimal characters")

var hexRE = regexp.MustCompile(`^[0-9a-f]+$`)

// For builds the tag set. It does not judge the result: policy does.
func For(in Input) (Set, error) {
	commit := strings.ToLower(in.Commit)
	if len(commit) < ShortLen || !hexRE.MatchString(commit) {
		return nil, fmt.Errorf("tagging commit %q: %w", in.Commit, ErrBadCommit)
	}
	var s Set
	var ver string
	if in.Version != nil {
		ver = VersionName(in.Version)
		s = append(s, Tag{Name: ver, Kind: Version})
	}
	if in.Env != "" {
		s = append(s, Tag{Name: EnvPrefix + in.Env, Kind: Env})
	}
	short := commit[:ShortLen]
	s = append(s, Tag{Name: short, Kind: SHA})
	if in.Latest {
		s = append(s, Tag{Name: LatestName, Kind: Latest})
	}
	for _, arch := range in.Arches {
		if ver != "" {
			s = append(s, Tag{Name: ver + "-" + arch, Kind: Version, Arch: arch})
		}
		s = append(s, Tag{Name: short + "-" + arch, Kind: SHA, Arch: arch})
	}
	return s, nil
}

// VersionName is the tag of a release version: v, then the version without
// build metadata, which a tag cannot hold ('+' is not a tag character) and
// which semver ignores for precedence anyway.
func VersionName(v *semver.Version) string {
	name := fmt.Sprintf("v%d.%d.%d", v.Major(), v.Minor(), v.Patch())
	if p := v.Prerelease(); p != "" {
		name += "-" + p
	}
	return name
}

// ArchSuffix turns a platform (os/arch[/variant]) into the suffix its tags
// carry: the arch, with the variant appended for arm (linux/arm/v7 → armv7)
// and dropped where it is the default (linux/arm64/v8 → arm64).
func ArchSuffix(platform string) (string, error) {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", fmt.Errorf("parsing platform %q: want os/arch[/variant]", platform)
	}
	arch := parts[1]
	if !archRE.MatchString(arch) {
		return "", fmt.Errorf("parsing platform %q: arch %q is not lowercase letters and digits", platform, arch)
	}
	if len(parts) == 3 && !(arch == "arm64" && parts[2] == "v8") {
		if !archRE.MatchString(parts[2]) {
			return "", fmt.Errorf("parsing platform %q: variant %q is not lowercase letters and digits", platform, parts[2])
		}
		arch += parts[2]
	}
	return arch, nil
}

var archRE = regexp.MustCompile(`^[a-z0-9]+$`)

// knownArches are the suffixes Parse recognises: Go's GOARCH values that OCI
// platforms use, and the arm variants.
var knownArches = []string{"amd64", "arm64", "armv7", "armv6", "armv5", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"}

var shortRE = regexp.MustCompile(`^[0-9a-f]{7}$`)

// Parse classifies a tag name as tagflow would have made it.
func Parse(name string) Tag {
	switch {
	case name == LatestName:
		return Tag{Name: name, Kind: Latest}
	case strings.HasPrefix(name, EnvPrefix) && len(name) > len(EnvPrefix):
		return Tag{Name: name, Kind: Env}
	}
	// An arch suffix is read first: v1.4.2-amd64 is also valid semver (a
	// pre-release named amd64), but nobody names a pre-release after a CPU.
	for _, arch := range knownArches {
		if base, ok := strings.CutSuffix(name, "-"+arch); ok {
			if k := baseKind(base); k != Other {
				return Tag{Name: name, Kind: k, Arch: arch}
			}
		}
	}
	return Tag{Name: name, Kind: baseKind(name)}
}

func baseKind(name string) Kind {
	switch {
	case shortRE.MatchString(name):
		return SHA
	case version.FromTagName(name, "v") != nil:
		return Version
	}
	return Other
}

// SplitSHA picks the plain SHA tag out of tag names: the one an image is
// published under first, so every other tag can copy its manifest.
func SplitSHA(names []string) (string, []string, error) {
	sha := ""
	var rest []string
	for _, n := range names {
		if t := Parse(n); t.Kind == SHA && t.Arch == "" && sha == "" {
			sha = n
			continue
		}
		rest = append(rest, n)
	}
	if sha == "" {
		return "", nil, fmt.Errorf("tags %v: one must be the 7-character commit SHA: it is published first and names the digest", names)
	}
	return sha, rest, nil
}
