package version

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/tagflow/tagflow/pipeline/source"
)

// Bump is the size of a version change, ordered so the largest wins.
type Bump int

const (
	None Bump = iota
	Patch
	Minor
	Major
)

func (b Bump) String() string {
	return [...]string{"none", "patch", "minor", "major"}[b]
}

// header matches a conventional-commit subject: type(scope)!: description.
var header = regexp.MustCompile(`^([a-zA-Z]+)(\([^()\r\n]*\))?(!)?: \S`)

// breakingFooter matches the BREAKING CHANGE footer (BREAKING-CHANGE is a synonym).
var breakingFooter = regexp.MustCompile(`(?m)^BREAKING[ -]CHANGE: `)

// Classify returns the bump one commit message asks for: "fix" is a patch,
// "feat" a minor, "!" after the type or a BREAKING CHANGE footer a major.
// Other types and non-conventional messages ask for nothing.
func Classify(message string) Bump {
	subject, body, _ := strings.Cut(message, "\n")
	m := header.FindStringSubmatch(strings.TrimSpace(subject))
	if m == nil {
		return None
	}
	if m[3] == "!" || breakingFooter.MatchString(body) {
		return Major
	}
	switch strings.ToLower(m[1]) {
	case "feat":
		return Minor
	case "fix":
		return Patch
	}
	return None
}

// Reason is one commit that counted toward the next version.
type Reason struct {
	Commit  string
	Subject string
	Bump    Bump
}

// Decision is the next version and why.
type Decision struct {
	Current *semver.Version // the last release; 0.0.0 when there is none
	Tag     string          // the tag of Current; empty when there is none
	Next    *semver.Version // equal to Current when no commit asks for a release
	Bump    Bump            // the bump applied (after the pre-1.0 rule)
	Reasons []Reason        // the commits that asked for a bump, newest first
	Commits int             // all commits since Current
}

// NextOptions tune Decide.
type NextOptions struct {
	// MajorOnZero lets a breaking change on 0.x bump the major version. By
	// default it bumps the minor, as svu --v0 and semver's "0.y.z is
	// unstable" suggest: leaving 0.x is a decision, not an accident.
	MajorOnZero bool
}

// Decide computes the next version from the current one and the commits since.
func Decide(current *semver.Version, commits []source.Commit, opts NextOptions) Decision {
	d := Decision{Current: current, Commits: len(commits)}
	for _, c := range commits {
		b := Classify(c.Message)
		if b == None {
			continue
		}
		d.Reasons = append(d.Reasons, Reason{Commit: c.Hash, Subject: c.Subject(), Bump: b})
		d.Bump = max(d.Bump, b)
	}
	if d.Bump == Major && current.Major() == 0 && !opts.MajorOnZero {
		d.Bump = Minor
	}
	var next semver.Version
	switch d.Bump {
	case Major:
		next = current.IncMajor()
	case Minor:
		next = current.IncMinor()
	case Patch:
		next = current.IncPatch()
	default:
		next = *current
	}
	d.Next = &next
	return d
}

// Next reads the repository: the highest stable release tag reachable from
// HEAD is the current version, and the commits since it decide the next.
func Next(ctx context.Context, repo *source.Repo, tagPrefix string, opts NextOptions) (Decision, error) {
	tags, err := repo.Tags()
	if err != nil {
		return Decision{}, err
	}
	history, err := repo.Log(ctx, "")
	if err != nil {
		return Decision{}, err
	}
	reachable := make(map[string]bool, len(history))
	for _, c := range history {
		reachable[c.Hash] = true
	}
	type release struct {
		v      *semver.Version
		tag    string
		commit string
	}
	var releases []release
	for name, commit := range tags {
		v := FromTagName(name, tagPrefix)
		if v == nil || v.Prerelease() != "" || !reachable[commit] {
			continue
		}
		releases = append(releases, release{v, name, commit})
	}
	if len(releases) == 0 {
		d := Decide(semver.New(0, 0, 0, "", ""), history, opts)
		return d, nil
	}
	sort.Slice(releases, func(i, j int) bool {
		if c := releases[i].v.Compare(releases[j].v); c != 0 {
			return c > 0
		}
		return releases[i].tag < releases[j].tag
	})
	last := releases[0]
	since, err := repo.Log(ctx, last.commit)
	if err != nil {
		return Decision{}, fmt.Errorf("reading commits since %s: %w", last.tag, err)
	}
	d := Decide(last.v, since, opts)
	d.Tag = last.tag
	return d, nil
}
