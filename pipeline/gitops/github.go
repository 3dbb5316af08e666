package gitops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// GitHub opens pull requests on GitHub or GitHub Enterprise.
type GitHub struct {
	client      *github.Client
	owner, repo string
}

// NewGitHub makes a provider for owner/repo. An empty apiURL means
// api.github.com; for GitHub Enterprise pass https://HOST/api/v3/.
func NewGitHub(token, apiURL, owner, repo string, hc *http.Client) (*GitHub, error) {
	c := github.NewClient(hc).WithAuthToken(token)
	if apiURL != "" {
		var err error
		if c, err = c.WithEnterpriseURLs(apiURL, apiURL); err != nil {
			return nil, fmt.Errorf("github API URL %q: %w", apiURL, err)
		}
	}
	return &GitHub{client: c, owner: owner, repo: repo}, nil
}

// Upsert finds the open pull request from p.Head and updates it, or opens one.
func (g *GitHub) Upsert(ctx context.Context, p Proposal) (PullRequest, error) {
	open, err := g.find(ctx, p)
	if err != nil {
		return PullRequest{}, err
	}
	var out PullRequest
	if open == nil {
		pr, _, err := g.client.PullRequests.Create(ctx, g.owner, g.repo, &github.NewPullRequest{
			Title: github.String(p.Title), Head: github.String(p.Head), Base: github.String(p.Base), Body: github.String(p.Body),
		})
		var ge *github.ErrorResponse
		if errors.As(err, &ge) && ge.Response != nil && ge.Response.StatusCode == http.StatusUnprocessableEntity && strings.Contains(strings.ToLower(ge.Error()), "already exists") {
			// Opened by a concurrent run between our list and create: update that one.
			if open, err = g.find(ctx, p); err != nil || open == nil {
				return PullRequest{}, g.err("opening a pull request", err)
			}
		} else if err != nil {
			return PullRequest{}, g.err("opening a pull request", err)
		} else {
			open, out.Created, out.Changed = pr, true, true
		}
	}
	if !out.Created && (open.GetTitle() != p.Title || open.GetBody() != p.Body) {
		pr, _, err := g.client.PullRequests.Edit(ctx, g.owner, g.repo, open.GetNumber(), &github.PullRequest{Title: github.String(p.Title), Body: github.String(p.Body)})
		if err != nil {
			return PullRequest{}, g.err(fmt.Sprintf("updating pull request #%d", open.GetNumber()), err)
		}
		open, out.Changed = pr, true
	}
	var have []string
	for _, l := range open.Labels {
		have = append(have, l.GetName())
	}
	var missing []string
	for _, l := range p.Labels {
		if !slices.Contains(have, l) {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		if _, _, err := g.client.Issues.AddLabelsToIssue(ctx, g.owner, g.repo, open.GetNumber(), missing); err != nil {
			return PullRequest{}, g.err(fmt.Sprintf("labelling pull request #%d", open.GetNumber()), err)
		}
		out.Changed = true
	}
	out.Number, out.URL = open.GetNumber(), open.GetHTMLURL()
	return out, nil
}

// find lists open pull requests into p.Base and returns the one from p.Head.
// The head filter is also checked here: not every server honours ?head=.
func (g *GitHub) find(ctx context.Context, p Proposal) (*github.PullRequest, error) {
	opts := &github.PullRequestListOptions{State: "open", Head: g.owner + ":" + p.Head, Base: p.Base, ListOptions: github.ListOptions{PerPage: 100}}
	for {
		prs, res, err := g.client.PullRequests.List(ctx, g.owner, g.repo, opts)
		if err != nil {
			return nil, g.err("listing pull requests", err)
		}
		for _, pr := range prs {
			if pr.GetHead().GetRef() == p.Head {
				return pr, nil
			}
		}
		if res.NextPage == 0 {
			return nil, nil
		}
		opts.Page = res.NextPage
	}
}

func (g *GitHub) err(doing string, err error) error {
	var ge *github.ErrorResponse
	if errors.As(err, &ge) && ge.Response != nil && (ge.Response.StatusCode == http.StatusUnauthorized || ge.Response.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%s on github %s/%s: %w (HTTP %d)", doing, g.owner, g.repo, ErrProviderAuth, ge.Response.StatusCode)
	}
	return fmt.Errorf("%s on github %s/%s: %w", doing, g.owner, g.repo, err)
}
