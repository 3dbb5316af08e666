package gitops

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// PullRequest is an open pull request.
type PullRequest struct {
	Number  int    `json:"number"`
	URL     string `json:"url"`
	Created bool   `json:"created"` // opened now; false when an open one was updated
	Changed bool   `json:"changed"` // title, body or labels were written
}

// Proposal is what a pull request should say.
type Proposal struct {
	Head, Base  string
	Title, Body string
	Labels      []string
}

// Provider opens a pull request for a branch, or updates the open one: a
// re-run never opens a second.
type Provider interface {
	Upsert(ctx context.Context, p Proposal) (PullRequest, error)
}

// ErrProviderAuth reports a token the provider refused.
var ErrProviderAuth = errors.New("the provider refused the token")

// Slug splits a repository URL (https://host/owner/repo[.git]) into host, owner and name.
func Slug(repoURL string) (host, owner, name string, err error) {
	u, err := url.Parse(repoURL)
	if err != nil || u.Host == "" {
		return "", "", "", fmt.Errorf("repository URL %q: want https://HOST/OWNER/REPO", redact(repoURL))
	}
	parts := strings.Split(strings.Trim(strings.TrimSuffix(u.Path, ".git"), "/"), "/")
	if len(parts) < 2 {
		return "", "", "", fmt.Errorf("repository URL %q: want https://HOST/OWNER/REPO", redact(repoURL))
	}
	return u.Host, parts[len(parts)-2], parts[len(parts)-1], nil
}
