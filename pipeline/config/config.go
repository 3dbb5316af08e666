// Package config reads tagflow.yaml. Decoding is strict: an unknown key or a
// bad value is an error that names the file and line. Every setting has a
// default, so a repository without the file works.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"

	"github.com/tagflow/tagflow/pipeline/labels"
	"github.com/tagflow/tagflow/pipeline/policy"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// DefaultFile is the config file looked for in the working directory.
const DefaultFile = "tagflow.yaml"

// DefaultRegistry is where images go when nothing says otherwise: a registry
// on this machine, so a first run pushes nothing anywhere else.
const DefaultRegistry = "localhost:5000"

// Config is the whole configuration.
type Config struct {
	// Registry is host[/namespace]; images are <registry>/<service>.
	Registry   string     `yaml:"registry"`
	Registries Registries `yaml:"registries"`
	// Environments in promotion order; the last one is production.
	Environments    []string `yaml:"environments"`
	ReleaseBranches []string `yaml:"release_branches"`
	Latest          Latest   `yaml:"latest"`
	Version         Version  `yaml:"version"`
	// Platforms to build, os/arch[/variant]; more than one makes a multi-arch build.
	Platforms []string          `yaml:"platforms"`
	Labels    map[string]string `yaml:"labels"`
	// SourceURL overrides the repository URL in labels (default: the origin remote).
	SourceURL string    `yaml:"source_url"`
	Services  []Service `yaml:"services"`
	GitOps    GitOps    `yaml:"gitops"`
	Retention Retention `yaml:"retention"`
	Policy    Policy    `yaml:"policy"`
	Scan      Scan      `yaml:"scan"`

	// Dir is the directory relative paths are resolved against: the config
	// file's directory, or the working directory for the defaults.
	Dir string `yaml:"-"`
	// File is the file the config came from; empty for the defaults.
	File string `yaml:"-"`
}

// Registries says where images may go.
type Registries struct {
	// Allowed registry prefixes (host or host/namespace); defaults to the registry.
	Allowed []string `yaml:"allowed"`
	// Protected registry prefixes never take latest.
	Protected []string `yaml:"protected"`
}

// Latest says where the latest tag may go.
type Latest struct {
	Environments []string `yaml:"environments"`
}

// Version says where versions come from.
type Version struct {
	Source      string `yaml:"source"` // tag or file: which wins when both exist
	File        string `yaml:"file"`
	TagPrefix   string `yaml:"tag_prefix"`
	MajorOnZero bool   `yaml:"major_on_zero"`
}

// Service is one deployable.
type Service struct {
	Name       string `yaml:"name"`
	Source     string `yaml:"source"`     // directory, relative to the config file
	Dockerfile string `yaml:"dockerfile"` // relative to Source
	Domain     string `yaml:"domain"`     // the part of the organisation it belongs to
	TagPrefix  string `yaml:"tag_prefix"` // release tag prefix, for monorepos (e.g. "config-cli/v")
}

// GitOps says where deployments are declared.
type GitOps struct {
	Repo       string `yaml:"repo"`
	Provider   string `yaml:"provider"` // github, gitea or none
	APIURL     string `yaml:"api_url"`  // GitHub Enterprise or Gitea base URL; default from the provider and repo
	BaseBranch string `yaml:"base_branch"`
	// Path is the overlay file template; {service} and {env} are replaced.
	Path string `yaml:"path"`
	// Keys maps dotted key paths in the overlay to what they receive:
	// tag, digest, repository or reference (repository:tag@digest).
	Keys map[string]string `yaml:"keys"`
	// Tag is which immutable tag the overlay gets: version (vX.Y.Z when the
	// digest has one, else the SHA) or sha.
	Tag string `yaml:"tag"`
	// Direct lists environments whose updates are committed straight to the
	// base branch instead of proposed in a pull request.
	Direct []string `yaml:"direct"`
	Create bool     `yaml:"create"` // create missing overlay files and keys
	Author string   `yaml:"author"` // "Name <email>" of the commits
	Labels []string `yaml:"labels"`
	// TitleTemplate and BodyTemplate are files (relative to the config) with
	// text/template over the deployment; empty means tagflow's own.
	TitleTemplate string   `yaml:"title_template"`
	BodyTemplate  string   `yaml:"body_template"`
	Verify        []string `yaml:"verify"` // checklist steps; empty means tagflow's own
}

// GitOpsFields are the values an overlay key can receive.
var GitOpsFields = []string{"tag", "digest", "repository", "reference"}

// Retention says how many historical digests to keep.
type Retention struct {
	Keep int `yaml:"keep"`
}

// Scan configures the vulnerability gate.
type Scan struct {
	Severity      []string `yaml:"severity"` // severities that fail the gate
	IgnoreUnfixed bool     `yaml:"ignore_unfixed"`
	IgnoreFile    string   `yaml:"ignore_file"`   // a .trivyignore, relative to the config
	DBRepository  string   `yaml:"db_repository"` // a mirror of Trivy's DB (OCI repository)
	CacheDir      string   `yaml:"cache_dir"`     // Trivy's cache; default Trivy's own
	Offline       bool     `yaml:"offline"`       // use the DB in the cache as it is; never download
	Trivy         string   `yaml:"trivy"`         // the trivy binary; default trivy on PATH
	// Allow lists accepted findings, each until a date and for a reason; an
	// expired entry no longer excuses anything and says so.
	Allow []ScanAllow `yaml:"allow"`
}

// ScanAllow is one allow-list entry.
type ScanAllow struct {
	ID     string `yaml:"id"`
	Until  string `yaml:"until"` // YYYY-MM-DD
	Reason string `yaml:"reason"`
}

// ScanSeverities are the severities Trivy reports.
var ScanSeverities = []string{"UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"}

// Policy tunes the rules.
type Policy struct {
	// TagPattern is the admission pattern; the default accepts the configured
	// platforms' arch suffixes on immutable tags.
	TagPattern string `yaml:"tag_pattern"`
}

// Providers are the known GitOps pull-request providers.
var Providers = []string{"github", "gitea", "none"}

// Default returns the configuration used when there is no file.
func Default() *Config {
	c := preset(".", "")
	c.fill()
	return c
}

// preset holds the defaults whose zero value a user may write on purpose, so
// they are set before decoding and an explicit 0 is judged, not replaced.
func preset(dir, file string) *Config {
	return &Config{Dir: dir, File: file, Retention: Retention{Keep: 10}}
}

// fill sets the defaults of everything left empty.
func (c *Config) fill() {
	if c.Registry == "" {
		c.Registry = DefaultRegistry
	}
	if c.Registries.Allowed == nil {
		c.Registries.Allowed = []string{c.Registry}
	}
	if c.Environments == nil {
		c.Environments = []string{"dev", "staging", "prod"}
	}
	if c.ReleaseBranches == nil {
		c.ReleaseBranches = []string{"main"}
	}
	if c.Latest.Environments == nil {
		c.Latest.Environments = []string{"dev"}
	}
	if c.Version.Source == "" {
		c.Version.Source = "tag"
	}
	if c.Version.File == "" {
		c.Version.File = "VERSION"
	}
	if c.Version.TagPrefix == "" {
		c.Version.TagPrefix = "v"
	}
	if c.Platforms == nil {
		c.Platforms = []string{"linux/amd64"}
	}
	if c.GitOps.Provider == "" {
		c.GitOps.Provider = "none"
	}
	if c.GitOps.BaseBranch == "" {
		c.GitOps.BaseBranch = "main"
	}
	if c.GitOps.Path == "" {
		c.GitOps.Path = "apps/{service}/overlays/{env}/values.yaml"
	}
	if c.GitOps.Keys == nil {
		c.GitOps.Keys = map[string]string{"image.tag": "tag"}
	}
	if c.GitOps.Tag == "" {
		c.GitOps.Tag = "version"
	}
	if c.Scan.Severity == nil {
		c.Scan.Severity = []string{"HIGH", "CRITICAL"}
	}
	if c.GitOps.Labels == nil {
		c.GitOps.Labels = []string{"tagflow"}
	}
	for i := range c.Services {
		if c.Services[i].Dockerfile == "" {
			c.Services[i].Dockerfile = "Dockerfile"
		}
	}
	if c.Policy.TagPattern == "" {
		c.Policy.TagPattern = policy.PatternFor(c.Arches())
	}
}

// Error is one problem in a config file, with where it is.
type Error struct {
	File string
	Line int    // 0 when unknown
	Key  string // dotted path of the setting, when known
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads path. A missing file at the default path gives the defaults; a
// missing file that was named explicitly is an error.
func Load(path string, explicit bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		c := Default()
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	c.Dir = filepath.Dir(path)
	return c, nil
}

// Parse decodes and validates data; file names it in errors.
func Parse(file string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	c := preset(filepath.Dir(file), file)
	if len(root.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(file, err)
		}
	}
	c.fill()
	if errs := c.validate(&root); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

var (
	lineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownRE  = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	unmarshRE  = regexp.MustCompile("^cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
	goTypeWord = map[string]string{"int": "a whole number", "bool": "true or false", "string": "a string"}
)

// yamlError turns yaml.v3's messages into ours: file:line: what is wrong.
func yamlError(file string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out []error
	for _, m := range msgs {
		e := &Error{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sub := lineRE.FindStringSubmatch(m); sub != nil {
			e.Line, _ = strconv.Atoi(sub[1])
			e.Msg = sub[2]
		}
		if sub := unknownRE.FindStringSubmatch(e.Msg); sub != nil {
			e.Msg = fmt.Sprintf("unknown key %q", sub[1])
		} else if sub := unmarshRE.FindStringSubmatch(e.Msg); sub != nil {
			want := goTypeWord[sub[3]]
			switch {
			case strings.HasPrefix(sub[3], "[]"):
				want = "a list"
			case strings.HasPrefix(sub[3], "map["), strings.HasPrefix(sub[3], "config."):
				want = "a mapping"
			case want == "":
				want = sub[3]
			}
			e.Msg = fmt.Sprintf("%q is not %s", sub[2], want)
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

var (
	serviceRE = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)
	authorRE  = regexp.MustCompile(`^[^<>]+ <[^<>@\s]+@[^<>\s]+>$`)
)

// validate checks the values; root gives the lines.
func (c *Config) validate(root *yaml.Node) []error {
	var errs []error
	bad := func(path []string, format string, args ...any) {
		errs = append(errs, &Error{File: c.File, Line: lineOf(root, path), Key: strings.Join(path, "."), Msg: fmt.Sprintf(format, args...)})
	}

	pattern, err := regexp.Compile(c.Policy.TagPattern)
	switch {
	case err != nil:
		bad([]string{"policy", "tag_pattern"}, "not a regular expression: %v", err)
	case !strings.HasPrefix(c.Policy.TagPattern, "^") || !strings.HasSuffix(c.Policy.TagPattern, "$"):
		bad([]string{"policy", "tag_pattern"}, "%q must be anchored with ^ and $, or it admits any tag that contains a match", c.Policy.TagPattern)
	}

	if err := CheckRegistry(c.Registry); err != nil {
		bad([]string{"registry"}, "%v", err)
	}
	for i, r := range c.Registries.Allowed {
		if err := CheckRegistry(r); err != nil {
			bad([]string{"registries", "allowed", strconv.Itoa(i)}, "%v", err)
		}
	}
	for i, r := range c.Registries.Protected {
		if err := CheckRegistry(r); err != nil {
			bad([]string{"registries", "protected", strconv.Itoa(i)}, "%v", err)
		}
	}

	if len(c.Environments) == 0 {
		bad([]string{"environments"}, "at least one environment is needed")
	}
	rules := policy.Rules{Environments: c.Environments}
	if err == nil {
		rules.Pattern = pattern
	}
	for i, env := range c.Environments {
		if slices.Index(c.Environments, env) != i {
			bad([]string{"environments", strconv.Itoa(i)}, "environment %q is listed twice", env)
		}
		if v := rules.CheckEnv(env); v != nil {
			bad([]string{"environments", strconv.Itoa(i)}, "%s", v.Message)
		}
	}
	for i, env := range c.Latest.Environments {
		switch {
		case !slices.Contains(c.Environments, env):
			bad([]string{"latest", "environments", strconv.Itoa(i)}, "%q is not one of the environments (%s)", env, strings.Join(c.Environments, ", "))
		case env == c.Environments[len(c.Environments)-1]:
			bad([]string{"latest", "environments", strconv.Itoa(i)}, "%q is the production environment, which never runs latest", env)
		}
	}

	if c.Version.Source != "tag" && c.Version.Source != "file" {
		bad([]string{"version", "source"}, "%q is not tag or file", c.Version.Source)
	}
	if strings.ContainsAny(c.Version.File, `/\`) {
		bad([]string{"version", "file"}, "%q must be a file name in the source directory, not a path", c.Version.File)
	}

	for i, p := range c.Platforms {
		if _, err := tags.ArchSuffix(p); err != nil {
			bad([]string{"platforms", strconv.Itoa(i)}, "%v", err)
		}
	}

	for k := range c.Labels {
		if slices.Contains(labels.Reserved, k) {
			bad([]string{"labels", k}, "%s is set by tagflow from the source and cannot be configured", k)
		}
	}

	seen := map[string]bool{}
	for i, s := range c.Services {
		at := []string{"services", strconv.Itoa(i), "name"}
		switch {
		case !serviceRE.MatchString(s.Name):
			bad(at, "service name %q must be lowercase letters, digits and single . _ - separators", s.Name)
		case seen[s.Name]:
			bad(at, "service %q is listed twice", s.Name)
		}
		seen[s.Name] = true
		if filepath.IsAbs(s.Source) {
			bad([]string{"services", strconv.Itoa(i), "source"}, "%q must be relative to the config file", s.Source)
		}
	}

	if !slices.Contains(Providers, c.GitOps.Provider) {
		bad([]string{"gitops", "provider"}, "%q is not one of %s", c.GitOps.Provider, strings.Join(Providers, ", "))
	}
	if !strings.Contains(c.GitOps.Path, "{service}") || !strings.Contains(c.GitOps.Path, "{env}") {
		bad([]string{"gitops", "path"}, "%q must contain {service} and {env}", c.GitOps.Path)
	}
	for k, f := range c.GitOps.Keys {
		if !slices.Contains(GitOpsFields, f) {
			bad([]string{"gitops", "keys", k}, "%q is not one of %s", f, strings.Join(GitOpsFields, ", "))
		}
		if k == "" || strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.Contains(k, "..") {
			bad([]string{"gitops", "keys"}, "key path %q must be dotted keys like image.tag", k)
		}
	}
	if len(c.GitOps.Keys) == 0 {
		bad([]string{"gitops", "keys"}, "at least one key to set is needed")
	}
	if c.GitOps.Tag != "version" && c.GitOps.Tag != "sha" {
		bad([]string{"gitops", "tag"}, "%q is not version or sha", c.GitOps.Tag)
	}
	for i, env := range c.GitOps.Direct {
		if !slices.Contains(c.Environments, env) {
			bad([]string{"gitops", "direct", strconv.Itoa(i)}, "%q is not one of the environments (%s)", env, strings.Join(c.Environments, ", "))
		}
	}
	if a := c.GitOps.Author; a != "" && !authorRE.MatchString(a) {
		bad([]string{"gitops", "author"}, "%q: want \"Name <email>\"", a)
	}
	for i, sev := range c.Scan.Severity {
		if !slices.Contains(ScanSeverities, strings.ToUpper(sev)) {
			bad([]string{"scan", "severity", strconv.Itoa(i)}, "%q is not one of %s", sev, strings.Join(ScanSeverities, ", "))
		}
	}
	for i, a := range c.Scan.Allow {
		at := []string{"scan", "allow", strconv.Itoa(i)}
		if _, err := time.Parse(time.DateOnly, a.Until); err != nil {
			bad(append(at, "until"), "%q: want a date YYYY-MM-DD: an exception without an end is not an exception", a.Until)
		}
		if a.ID == "" || strings.TrimSpace(a.Reason) == "" {
			bad(at, "an allow-list entry needs an id and a reason")
		}
	}
	if c.Retention.Keep < 1 {
		bad([]string{"retention", "keep"}, "%d: keep at least 1 digest", c.Retention.Keep)
	}
	return errs
}

// CheckRegistry validates a host[/namespace] registry setting.
func CheckRegistry(r string) error {
	if r == "" || strings.Contains(r, "://") {
		return fmt.Errorf("registry %q must be host[:port][/namespace], without a scheme", r)
	}
	if _, err := name.NewRepository(r+"/probe", name.StrictValidation); err != nil {
		return fmt.Errorf("registry %q: %w", r, err)
	}
	return nil
}

// lineOf finds the line of the node at path (mapping keys and list indexes),
// or of its nearest existing parent.
func lineOf(root *yaml.Node, path []string) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					next = n.Content[i+1]
					break
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(p); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
			}
		}
		if next == nil {
			break
		}
		n, line = next, next.Line
	}
	return line
}

// Service returns the named service's settings; a service that is not
// configured gets the defaults, with its source the working directory.
func (c *Config) Service(name string) (Service, bool) {
	for _, s := range c.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{Name: name, Dockerfile: "Dockerfile"}, false
}

// SourceDir is a service's source directory resolved against the config file.
func (c *Config) SourceDir(s Service) string {
	if s.Source == "" {
		return ""
	}
	return filepath.Join(c.Dir, s.Source)
}

// TagPrefix is the release tag prefix of a service.
func (c *Config) TagPrefix(s Service) string {
	if s.TagPrefix != "" {
		return s.TagPrefix
	}
	return c.Version.TagPrefix
}

// Arches are the arch suffixes of a multi-arch build; none for one platform.
func (c *Config) Arches() []string {
	if len(c.Platforms) < 2 {
		return nil
	}
	var out []string
	for _, p := range c.Platforms {
		if a, err := tags.ArchSuffix(p); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// Rules are the policy rules this configuration sets, for the registry the
// build goes to.
func (c *Config) Rules() policy.Rules {
	return policy.Rules{
		Pattern:            regexp.MustCompile(c.Policy.TagPattern), // validated when parsed
		Allowed:            c.Registries.Allowed,
		Protected:          c.Registries.Protected,
		Environments:       c.Environments,
		LatestEnvironments: c.Latest.Environments,
		ReleaseBranches:    c.ReleaseBranches,
	}
}
