// Package policy decides whether a tag set may be pushed, and says why not.
//
// The rules are the ones the CI enforces and the admission policy exports, so
// each violation carries a stable rule id, the offending input and a message
// that names it.
package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/tagflow/tagflow/pipeline/tags"
)

// DefaultPattern is the admission pattern every emitted tag must match.
const DefaultPattern = `^(v\d+\.\d+\.\d+|env-\w+|[0-9a-f]{7})$`

// PatternFor is the default pattern for a build with these arch suffixes: the
// immutable tags may carry exactly those suffixes, and nothing looser.
func PatternFor(arches []string) string {
	if len(arches) == 0 {
		return DefaultPattern
	}
	quoted := make([]string, len(arches))
	for i, a := range arches {
		quoted[i] = regexp.QuoteMeta(a)
	}
	suffix := `(-(` + strings.Join(quoted, "|") + `))?`
	return `^(v\d+\.\d+\.\d+` + suffix + `|env-\w+|[0-9a-f]{7}` + suffix + `)$`
}

// Rule is a stable rule id.
type Rule string

const (
	ReleaseVersion  Rule = "release-version"  // a release needs a semantic version
	VersionMismatch Rule = "version-mismatch" // VERSION file and release tag disagree on a release
	ReleaseBranch   Rule = "release-branch"   // releases come from release branches (or a detached tag checkout)
	ReleaseDirty    Rule = "release-dirty"    // a release is built from a clean commit
	SHARequired     Rule = "sha-required"     // every tag set carries the short SHA
	TagPattern      Rule = "tag-pattern"      // every tag matches the admission pattern
	LatestEnv       Rule = "latest-env"       // latest only for the configured dev/local environments, never production
	LatestProtected Rule = "latest-protected" // latest never goes to a protected registry
	RegistryAllowed Rule = "registry-allowed" // the registry is on the allow-list
	EnvName         Rule = "env-name"         // the environment makes a valid env- tag
	EnvUnknown      Rule = "env-unknown"      // the environment is a configured one
)

// Violation is one broken rule.
type Violation struct {
	Rule    Rule   `json:"rule"`
	Input   string `json:"input"`
	Message string `json:"message"`
}

func (v Violation) String() string { return fmt.Sprintf("[%s] %s", v.Rule, v.Message) }

// Error carries the violations of a refused plan, for callers that want an error.
type Error struct{ Violations []Violation }

func (e *Error) Error() string {
	msgs := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		msgs[i] = v.String()
	}
	return "policy violations: " + strings.Join(msgs, "; ")
}

// Rules are the configured rules.
type Rules struct {
	Pattern            *regexp.Regexp // the admission pattern; DefaultPattern when nil
	Allowed            []string       // registry prefixes (host or host/namespace) that may be pushed to; empty allows none
	Protected          []string       // registry prefixes that never take latest
	Environments       []string       // in promotion order; the last one is production
	LatestEnvironments []string       // where latest may go
	ReleaseBranches    []string       // branches releases may be cut from
}

func (r Rules) pattern() *regexp.Regexp {
	if r.Pattern == nil {
		return regexp.MustCompile(DefaultPattern)
	}
	return r.Pattern
}

// Input is one build's facts.
type Input struct {
	Registry        string   // host[/namespace] the tags go to
	Env             string   // the target environment
	Branch          string   // the branch built; empty for a detached HEAD
	Release         bool     // a release build
	Version         string   // the resolved version tag (vX.Y.Z); empty when none
	VersionConflict string   // why the version sources disagree; empty when they agree
	Dirty           bool     // the work tree had uncommitted changes
	Tags            tags.Set // the tag set
}

// Check returns every violation, in a stable order; none means allowed.
func (r Rules) Check(in Input) []Violation {
	var out []Violation
	add := func(rule Rule, input, format string, args ...any) {
		out = append(out, Violation{Rule: rule, Input: input, Message: fmt.Sprintf(format, args...)})
	}

	if in.Release {
		branch := in.Branch
		if branch == "" {
			branch = "(detached HEAD)"
		}
		if in.Version == "" {
			add(ReleaseVersion, branch, "release on branch %s has no semantic version: add a VERSION file (X.Y.Z) or tag HEAD vX.Y.Z", branch)
		}
		if in.VersionConflict != "" {
			add(VersionMismatch, in.VersionConflict, "release cannot tell its version: %s", in.VersionConflict)
		}
		if in.Branch != "" && len(r.ReleaseBranches) > 0 && !slices.Contains(r.ReleaseBranches, in.Branch) {
			add(ReleaseBranch, in.Branch, "release from branch %q: releases come from %s", in.Branch, strings.Join(r.ReleaseBranches, ", "))
		}
		if in.Dirty {
			add(ReleaseDirty, branch, "release from %s with a dirty work tree: the commit SHA would not identify what was built; commit or stash the changes", branch)
		}
	}

	if in.Env != "" { // a build has no target environment yet
		if v := r.CheckEnv(in.Env); v != nil {
			out = append(out, *v)
		}
	}

	if v := r.CheckRegistry(in.Registry); v != nil {
		out = append(out, *v)
	}

	if _, ok := in.Tags.Find(tags.SHA); !ok {
		add(SHARequired, strings.Join(in.Tags.Names(), ","), "tag set [%s] has no short-SHA tag: every build must be traceable to its commit", strings.Join(in.Tags.Names(), " "))
	}

	for _, t := range in.Tags {
		switch {
		case t.Kind == tags.Latest:
			// latest has rules of its own below; the admission pattern keeps it out of clusters.
			if prod := r.production(); in.Env == prod && prod != "" {
				add(LatestEnv, t.Name, "latest requested for %s, the production environment: production never runs latest", in.Env)
			} else if !slices.Contains(r.LatestEnvironments, in.Env) {
				add(LatestEnv, t.Name, "latest requested for environment %q: latest is only for %s", in.Env, listOrNone(r.LatestEnvironments))
			}
			if r.registryIn(in.Registry, r.Protected) {
				add(LatestProtected, t.Name, "latest requested for protected registry %q", in.Registry)
			}
		case t.Kind == tags.Env && t.Arch == "" && t.Name == tags.EnvPrefix+in.Env:
			// judged by CheckEnv, once
		default:
			if v := r.CheckTag(t.Name); v != nil {
				out = append(out, *v)
			}
		}
	}
	return out
}

// CheckEnv judges an environment name: configured, and making an env- tag
// that is a valid OCI tag and matches the pattern.
func (r Rules) CheckEnv(env string) *Violation {
	tag := tags.EnvPrefix + env
	if err := validTag(tag); err != nil || env == "" {
		return &Violation{Rule: EnvName, Input: env, Message: fmt.Sprintf("environment %q makes tag %q, which is not a valid OCI tag", env, tag)}
	}
	if pat := r.pattern(); !pat.MatchString(tag) {
		return &Violation{Rule: EnvName, Input: env, Message: fmt.Sprintf("environment %q makes tag %q, which does not match the admission pattern %s", env, tag, pat)}
	}
	if len(r.Environments) > 0 && !slices.Contains(r.Environments, env) {
		return &Violation{Rule: EnvUnknown, Input: env, Message: fmt.Sprintf("environment %q is not configured (environments: %s)", env, strings.Join(r.Environments, ", "))}
	}
	return nil
}

// CheckTag judges one tag name against the admission pattern and the OCI tag
// grammar.
func (r Rules) CheckTag(tag string) *Violation {
	if pat := r.pattern(); !pat.MatchString(tag) {
		return &Violation{Rule: TagPattern, Input: tag, Message: fmt.Sprintf("tag %q does not match the admission pattern %s", tag, pat)}
	}
	if err := validTag(tag); err != nil {
		return &Violation{Rule: TagPattern, Input: tag, Message: fmt.Sprintf("tag %q is not a valid OCI tag: %v", tag, err)}
	}
	return nil
}

// CheckRegistry judges a registry (host[/namespace]) against the allow-list.
func (r Rules) CheckRegistry(registry string) *Violation {
	if r.registryIn(registry, r.Allowed) {
		return nil
	}
	return &Violation{Rule: RegistryAllowed, Input: registry, Message: fmt.Sprintf("registry %q is not on the allow-list (%s)", registry, listOrNone(r.Allowed))}
}

func (r Rules) production() string {
	if len(r.Environments) == 0 {
		return ""
	}
	return r.Environments[len(r.Environments)-1]
}

func validTag(t string) error {
	_, err := name.NewTag("example.invalid/probe:"+t, name.StrictValidation)
	return err
}

// registryIn reports whether registry (host[/namespace]) lies under one of
// the prefixes: the same host, and the prefix's path a whole-segment prefix of
// the registry's path.
func (r Rules) registryIn(registry string, prefixes []string) bool {
	host, path := splitRegistry(registry)
	for _, p := range prefixes {
		ph, pp := splitRegistry(p)
		if ph != host {
			continue
		}
		if pp == "" || path == pp || strings.HasPrefix(path, pp+"/") {
			return true
		}
	}
	return false
}

// splitRegistry normalises the host the way references do (docker.io is
// index.docker.io, hosts are case-insensitive) and keeps the path as given.
func splitRegistry(s string) (host, path string) {
	s = strings.TrimSuffix(strings.TrimSpace(s), "/")
	host, path, _ = strings.Cut(s, "/")
	if reg, err := name.NewRegistry(host); err == nil {
		host = reg.Name()
	}
	return strings.ToLower(host), path
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none configured"
	}
	return strings.Join(xs, ", ")
}
