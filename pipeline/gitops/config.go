package gitops

import (
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"

	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// NewTarget builds where and how deployments of env are written, from the
// configuration. repoURL and provider override the configured ones when set.
func NewTarget(cfg *config.Config, env, repoURL, provider, token string, hc *http.Client) (Target, error) {
	g := cfg.GitOps
	if repoURL == "" {
		repoURL = g.Repo
	}
	if provider == "" {
		provider = g.Provider
	}
	if repoURL == "" {
		return Target{}, fmt.Errorf("no GitOps repository: set gitops.repo or pass --repo")
	}
	t := Target{
		Repo:     &Repo{URL: repoURL, Base: g.BaseBranch, Token: token},
		Direct:   slices.Contains(g.Direct, env),
		PathTmpl: g.Path,
		Keys:     map[string]Field{},
		Create:   g.Create,
		Labels:   g.Labels,
	}
	for k, f := range g.Keys {
		t.Keys[k] = Field(f)
	}
	if g.Author != "" {
		a, err := mail.ParseAddress(g.Author)
		if err != nil {
			return Target{}, fmt.Errorf("gitops.author %q: %w", g.Author, err)
		}
		t.Repo.Author = object.Signature{Name: a.Name, Email: a.Address}
	}
	for _, tmpl := range []struct {
		file string
		into *string
	}{{g.TitleTemplate, &t.Title}, {g.BodyTemplate, &t.Body}} {
		if tmpl.file == "" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(cfg.Dir, tmpl.file))
		if err != nil {
			return Target{}, fmt.Errorf("reading template: %w", err)
		}
		*tmpl.into = string(b)
	}
	switch provider {
	case "none":
	case "github", "gitea":
		if token == "" {
			return Target{}, fmt.Errorf("the %s provider needs a token: set $TAGFLOW_GITOPS_TOKEN", provider)
		}
		_, owner, name, err := Slug(repoURL)
		if err != nil {
			return Target{}, err
		}
		if provider == "github" {
			if t.Provider, err = NewGitHub(token, g.APIURL, owner, name, hc); err != nil {
				return Target{}, err
			}
			break
		}
		base := g.APIURL
		if base == "" {
			u, _ := url.Parse(repoURL)
			base = u.Scheme + "://" + u.Host
		}
		t.Provider = NewGitea(base, token, owner, name, hc)
	default:
		return Target{}, fmt.Errorf("provider %q: want github, gitea or none", provider)
	}
	return t, nil
}

// PickTag chooses the immutable tag an overlay gets: with prefer "version",
// the release tag when there is one, else the SHA tag; with "sha", the SHA.
func PickTag(names []string, prefer string) (string, error) {
	var version, sha string
	for _, n := range names {
		t := tags.Parse(n)
		if t.Arch != "" {
			continue
		}
		switch t.Kind {
		case tags.Version:
			version = n
		case tags.SHA:
			sha = n
		}
	}
	switch {
	case prefer == "version" && version != "":
		return version, nil
	case sha != "":
		return sha, nil
	}
	return "", fmt.Errorf("no immutable tag among %v: an overlay gets the SHA tag or vX.Y.Z, never a moving tag", names)
}
