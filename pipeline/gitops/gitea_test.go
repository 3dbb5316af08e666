package gitops_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/internal/giteatest"
	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/pipeline/gitops"
)

func TestGiteaPullRequests(t *testing.T) {
	g := giteatest.Start(t)
	seed := gittest.New(t)
	seed.Commit("seed", map[string]string{"apps/echo/overlays/prod/values.yaml": "image:\n  tag: v1.0.0\n  digest: " + oldDigest + "\n"})
	url := g.Repo(t, "gitops", seed.Dir)

	target := gitops.Target{
		Repo:     &gitops.Repo{URL: url, Base: "main", Token: g.Token},
		Provider: gitops.NewGitea(g.URL, g.Token, g.User, "gitops", nil),
		PathTmpl: "apps/{service}/overlays/{env}/values.yaml",
		Keys:     map[string]gitops.Field{"image.tag": gitops.FieldTag, "image.digest": gitops.FieldDigest},
		Labels:   []string{"tagflow", "deploy/prod"},
	}
	d := gitops.Deployment{
		Service: "echo", Env: "prod", Tags: []string{"v1.4.2", "env-prod", "1a2b3c4"},
		Image:  gitops.Image{Repository: "ghcr.io/acme/echo", Tag: "v1.4.2", Digest: newDigest},
		Commit: "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", SourceURL: "https://github.com/acme/echo",
		Scan: "| severity | count |\n|---|---|\n| CRITICAL | 0 |",
	}
	out, err := gitops.Open(ctx, target, d)
	if err != nil {
		t.Fatal(err)
	}
	if out.PR == nil || !out.PR.Created || !strings.HasPrefix(out.PR.URL, g.URL+"/"+g.User+"/gitops/pulls/") {
		t.Fatalf("Open = %+v", out)
	}

	type pr struct {
		Number int    `json:"number"`
		Title  string `json:"title"`
		Body   string `json:"body"`
		Head   struct {
			Ref string `json:"ref"`
		} `json:"head"`
		Labels []struct {
			Name string `json:"name"`
		} `json:"labels"`
	}
	openPRs := func() []pr {
		var prs []pr
		if st := g.API(t, http.MethodGet, "/repos/"+g.User+"/gitops/pulls?state=open", nil, &prs); st != http.StatusOK {
			t.Fatalf("listing PRs: HTTP %d", st)
		}
		return prs
	}
	prs := openPRs()
	if len(prs) != 1 || prs[0].Head.Ref != "tagflow/echo/prod" || prs[0].Title != "deploy(echo): prod → v1.4.2" || len(prs[0].Labels) != 2 {
		t.Fatalf("open PRs = %+v", prs)
	}
	for _, want := range []string{"`ghcr.io/acme/echo:v1.4.2@" + newDigest + "`", "`v1.4.2` `env-prod` `1a2b3c4`", "[1a2b3c4](https://github.com/acme/echo/commit/1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b)", "| CRITICAL | 0 |", "- [ ] `tagflow verify --service echo --env prod --sha 1a2b3c4`"} {
		if !strings.Contains(prs[0].Body, want) {
			t.Errorf("PR body lacks %q:\n%s", want, prs[0].Body)
		}
	}

	// Re-run: nothing changes, no second PR.
	out, err = gitops.Open(ctx, target, d)
	if err != nil || out.PR == nil || out.PR.Created || out.PR.Changed || out.Result.Pushed {
		t.Errorf("re-run = %+v %+v, %v", out.Result, out.PR, err)
	}
	// A new digest updates the same PR.
	third := "sha256:" + strings.Repeat("3", 64)
	d.Image.Digest, d.Image.Tag = third, "v1.4.3"
	out, err = gitops.Open(ctx, target, d)
	if err != nil || out.PR.Created || !out.PR.Changed || !out.Result.Pushed {
		t.Fatalf("new digest = %+v %+v, %v", out.Result, out.PR, err)
	}
	prs = openPRs()
	if len(prs) != 1 || prs[0].Number != out.PR.Number || !strings.Contains(prs[0].Body, third) || prs[0].Title != "deploy(echo): prod → v1.4.3" {
		t.Errorf("after a new digest: %+v", prs)
	}

	bad := gitops.NewGitea(g.URL, "0000000000000000000000000000000000000000", g.User, "gitops", nil)
	if _, err := bad.Upsert(ctx, gitops.Proposal{Head: "tagflow/echo/prod", Base: "main", Title: "x"}); !errors.Is(err, gitops.ErrProviderAuth) {
		t.Errorf("wrong token = %v, want ErrProviderAuth", err)
	}
}
