package promote_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/internal/giteatest"
	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/promote"
)

// TestPromoteThroughGitea: dev takes direct commits, staging and prod take
// pull requests on a real Gitea, merged through its API as a reviewer would.
func TestPromoteThroughGitea(t *testing.T) {
	g := giteatest.Start(t)
	w := &world{t: t, reg: registrytest.Start(t, registrytest.V3, registrytest.Options{})}
	w.url = g.Repo(t, "gitops", overlaySeed(t, w.reg.Host).Dir)
	w.configure("gitea", g.Token, "[dev]")

	digest := w.release("3.0.0", "3333333cccccccccccccccccccccccccccccccccc", true)
	type pr struct {
		Number int    `json:"number"`
		Body   string `json:"body"`
		Head   struct {
			Ref string `json:"ref"`
		} `json:"head"`
	}
	open := func() []pr {
		var prs []pr
		g.API(t, http.MethodGet, "/repos/"+g.User+"/gitops/pulls?state=open", nil, &prs)
		return prs
	}
	merge := func(n int) {
		if st := g.API(t, http.MethodPost, fmt.Sprintf("/repos/%s/gitops/pulls/%d/merge", g.User, n), map[string]any{"Do": "merge"}, nil); st != http.StatusOK {
			t.Fatalf("merging #%d: HTTP %d", n, st)
		}
	}

	p, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"})
	if err != nil {
		t.Fatal(err)
	}
	if p.GitOps.PR == nil || !p.GitOps.PR.Created {
		t.Fatalf("dev→staging opened no pull request: %+v", p.GitOps)
	}
	prs := open()
	if len(prs) != 1 || prs[0].Head.Ref != "tagflow/echo/staging" || !strings.Contains(prs[0].Body, digest) {
		t.Fatalf("open PRs = %+v", prs)
	}
	// Before the merge, staging's overlay and tag disagree: no promotion onwards.
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "staging", To: "prod"}); err == nil {
		t.Error("promoted from staging before its pull request merged")
	}
	merge(prs[0].Number)

	p, err = promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "staging", To: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if w.env("prod") != digest || p.GitOps.PR == nil || !p.GitOps.PR.Created {
		t.Fatalf("staging→prod = %+v", p)
	}
	// A re-run finds the same PR and changes nothing.
	again, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "staging", To: "prod"})
	if err != nil || again.Changed || again.GitOps.PR.Number != p.GitOps.PR.Number {
		t.Errorf("re-run = %+v, %v", again, err)
	}
	if prs = open(); len(prs) != 1 || prs[0].Head.Ref != "tagflow/echo/prod" {
		t.Errorf("open PRs after the re-run = %+v", prs)
	}
}
