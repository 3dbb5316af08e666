package gitops

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Gitea opens pull requests through Gitea's API (api/v1).
type Gitea struct {
	base        string // https://host[/prefix]
	token       string
	owner, repo string
	hc          *http.Client
}

// NewGitea makes a provider for owner/repo on the Gitea at baseURL.
func NewGitea(baseURL, token, owner, repo string, hc *http.Client) *Gitea {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Gitea{base: strings.TrimSuffix(baseURL, "/"), token: token, owner: owner, repo: repo, hc: hc}
}

type giteaPR struct {
	Number  int    `json:"number"`
	Title   string `json:"title"`
	Body    string `json:"body"`
	HTMLURL string `json:"html_url"`
	Head    struct {
		Ref string `json:"ref"`
	} `json:"head"`
	Labels []giteaLabel `json:"labels"`
}

type giteaLabel struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// Upsert finds the open pull request from p.Head and updates it, or opens one.
func (g *Gitea) Upsert(ctx context.Context, p Proposal) (PullRequest, error) {
	open, err := g.find(ctx, p.Head)
	if err != nil {
		return PullRequest{}, err
	}
	labelIDs, err := g.labelIDs(ctx, p.Labels)
	if err != nil {
		return PullRequest{}, err
	}
	if open == nil {
		var pr giteaPR
		body := map[string]any{"head": p.Head, "base": p.Base, "title": p.Title, "body": p.Body, "labels": labelIDs}
		status, err := g.call(ctx, http.MethodPost, g.repoPath("pulls"), body, &pr)
		if status == http.StatusConflict || status == http.StatusUnprocessableEntity {
			// A concurrent run opened it: update that one instead.
			if open, err = g.find(ctx, p.Head); err != nil || open == nil {
				return PullRequest{}, fmt.Errorf("opening a pull request on %s: HTTP %d and none found open", g.where(), status)
			}
		} else if err != nil {
			return PullRequest{}, fmt.Errorf("opening a pull request: %w", err)
		} else {
			return PullRequest{Number: pr.Number, URL: pr.HTMLURL, Created: true, Changed: true}, nil
		}
	}
	var have []int64
	for _, l := range open.Labels {
		have = append(have, l.ID)
	}
	slices.Sort(have)
	want := slices.Clone(labelIDs)
	want = append(want, have...)
	slices.Sort(want)
	want = slices.Compact(want)
	out := PullRequest{Number: open.Number, URL: open.HTMLURL}
	if open.Title != p.Title || open.Body != p.Body || !slices.Equal(have, want) {
		var pr giteaPR
		body := map[string]any{"title": p.Title, "body": p.Body, "labels": want}
		if _, err := g.call(ctx, http.MethodPatch, g.repoPath("pulls/"+strconv.Itoa(open.Number)), body, &pr); err != nil {
			return PullRequest{}, fmt.Errorf("updating pull request #%d: %w", open.Number, err)
		}
		out.Changed = true
	}
	return out, nil
}

func (g *Gitea) find(ctx context.Context, head string) (*giteaPR, error) {
	for page := 1; ; page++ {
		var prs []giteaPR
		if _, err := g.call(ctx, http.MethodGet, g.repoPath("pulls")+"?state=open&limit=50&page="+strconv.Itoa(page), nil, &prs); err != nil {
			return nil, fmt.Errorf("listing pull requests: %w", err)
		}
		for i := range prs {
			if prs[i].Head.Ref == head {
				return &prs[i], nil
			}
		}
		if len(prs) < 50 {
			return nil, nil
		}
	}
}

// labelIDs maps label names to ids, creating the labels that do not exist.
func (g *Gitea) labelIDs(ctx context.Context, names []string) ([]int64, error) {
	if len(names) == 0 {
		return []int64{}, nil
	}
	var existing []giteaLabel
	if _, err := g.call(ctx, http.MethodGet, g.repoPath("labels")+"?limit=50", nil, &existing); err != nil {
		return nil, fmt.Errorf("listing labels: %w", err)
	}
	ids := []int64{}
	for _, n := range names {
		i := slices.IndexFunc(existing, func(l giteaLabel) bool { return l.Name == n })
		if i >= 0 {
			ids = append(ids, existing[i].ID)
			continue
		}
		var l giteaLabel
		if _, err := g.call(ctx, http.MethodPost, g.repoPath("labels"), map[string]any{"name": n, "color": "#0e8a16"}, &l); err != nil {
			return nil, fmt.Errorf("creating label %q: %w", n, err)
		}
		ids = append(ids, l.ID)
	}
	slices.Sort(ids)
	return ids, nil
}

func (g *Gitea) repoPath(rest string) string {
	return "/api/v1/repos/" + url.PathEscape(g.owner) + "/" + url.PathEscape(g.repo) + "/" + rest
}

func (g *Gitea) where() string { return "gitea " + g.owner + "/" + g.repo }

// call sends a JSON request and decodes the answer; it returns the status.
func (g *Gitea) call(ctx context.Context, method, path string, body, into any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "token "+g.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := g.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s on %s: %w", method, path, g.where(), err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	switch {
	case res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden:
		return res.StatusCode, fmt.Errorf("%s %s on %s: %w (HTTP %d)", method, path, g.where(), ErrProviderAuth, res.StatusCode)
	case res.StatusCode >= 300:
		return res.StatusCode, fmt.Errorf("%s %s on %s: HTTP %d: %s", method, path, g.where(), res.StatusCode, strings.TrimSpace(string(data)))
	}
	if into != nil && len(data) > 0 {
		if err := json.Unmarshal(data, into); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s on %s: reading the answer: %w", method, path, g.where(), err)
		}
	}
	return res.StatusCode, nil
}
