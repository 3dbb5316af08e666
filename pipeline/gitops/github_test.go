package gitops_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tagflow/tagflow/pipeline/gitops"
)

// fakeGitHub answers with GitHub's response shapes and records each request.
type fakeGitHub struct {
	t        *testing.T
	mu       sync.Mutex
	log      []string
	prs      []map[string]any // open pull requests
	dupOnce  bool             // answer the next create with 422 "already exists" (a concurrent run won)
	wantAuth string
}

func (f *fakeGitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.log = append(f.log, r.Method+" "+r.URL.RequestURI()+" "+strings.TrimSpace(string(body)))
	// A GitHub Enterprise server: the API lives under /api/v3.
	if !strings.HasPrefix(r.URL.Path, "/api/v3/") {
		f.t.Errorf("request outside /api/v3: %s", r.URL)
	}
	r.URL.Path = strings.TrimPrefix(r.URL.Path, "/api/v3")
	if r.Header.Get("Authorization") != "Bearer "+f.wantAuth {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	pr := func(n int, title, body, ref string) map[string]any {
		return map[string]any{"number": n, "title": title, "body": body, "state": "open",
			"html_url": fmt.Sprintf("https://github.com/acme/gitops/pull/%d", n), "head": map[string]any{"ref": ref}, "labels": []any{}}
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/repos/acme/gitops/pulls":
		// Page 1 holds another branch's PR and links to page 2, as GitHub paginates.
		if r.URL.Query().Get("page") == "" {
			w.Header().Set("Link", `<http://`+r.Host+`/api/v3/repos/acme/gitops/pulls?page=2>; rel="next", <http://`+r.Host+`/api/v3/repos/acme/gitops/pulls?page=2>; rel="last"`)
			json.NewEncoder(w).Encode([]any{pr(1, "other", "", "tagflow/other/dev")})
			return
		}
		json.NewEncoder(w).Encode(f.prs)
	case r.Method == http.MethodPost && r.URL.Path == "/repos/acme/gitops/pulls":
		var in map[string]string
		json.Unmarshal(body, &in)
		if f.dupOnce {
			f.dupOnce = false
			f.prs = append(f.prs, pr(7, "old title", "old body", in["head"]))
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, `{"message":"Validation Failed","errors":[{"resource":"PullRequest","code":"custom","message":"A pull request already exists for acme:%s."}]}`, in["head"])
			return
		}
		p := pr(7, in["title"], in["body"], in["head"])
		f.prs = append(f.prs, p)
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(p)
	case r.Method == http.MethodPatch && r.URL.Path == "/repos/acme/gitops/pulls/7":
		var in map[string]any
		json.Unmarshal(body, &in)
		f.prs[0]["title"], f.prs[0]["body"] = in["title"], in["body"]
		json.NewEncoder(w).Encode(f.prs[0])
	case r.Method == http.MethodPost && r.URL.Path == "/repos/acme/gitops/issues/7/labels":
		var names []string
		json.Unmarshal(body, &names)
		var ls []any
		for _, n := range names {
			ls = append(ls, map[string]any{"name": n})
		}
		f.prs[0]["labels"] = ls
		json.NewEncoder(w).Encode(ls)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *fakeGitHub) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.log
	f.log = nil
	return l
}

func TestGitHubUpsert(t *testing.T) {
	fake := &fakeGitHub{t: t, wantAuth: token}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	gh, err := gitops.NewGitHub(token, srv.URL+"/", "acme", "gitops", srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	p := gitops.Proposal{Head: "tagflow/echo/prod", Base: "main", Title: "deploy(echo): prod → v1.4.2", Body: "body 1", Labels: []string{"tagflow"}}

	pr, err := gh.Upsert(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !pr.Created || pr.Number != 7 || pr.URL != "https://github.com/acme/gitops/pull/7" {
		t.Errorf("first Upsert = %+v", pr)
	}
	want := []string{
		"GET /api/v3/repos/acme/gitops/pulls?base=main&head=acme%3Atagflow%2Fecho%2Fprod&per_page=100&state=open ",
		"GET /api/v3/repos/acme/gitops/pulls?base=main&head=acme%3Atagflow%2Fecho%2Fprod&page=2&per_page=100&state=open ",
		`POST /api/v3/repos/acme/gitops/pulls {"title":"deploy(echo): prod → v1.4.2","head":"tagflow/echo/prod","base":"main","body":"body 1"}`,
		`POST /api/v3/repos/acme/gitops/issues/7/labels ["tagflow"]`,
	}
	if got := fake.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A re-run with a new body updates the same PR; labels already there are not re-sent.
	p.Body = "body 2"
	pr, err = gh.Upsert(ctx, p)
	if err != nil || pr.Created || !pr.Changed || pr.Number != 7 {
		t.Errorf("second Upsert = %+v, %v", pr, err)
	}
	got := fake.take()
	if len(got) != 3 || !strings.HasPrefix(got[2], `PATCH /api/v3/repos/acme/gitops/pulls/7 {"title":"deploy(echo): prod → v1.4.2","body":"body 2"}`) {
		t.Errorf("requests:\n%s", strings.Join(got, "\n"))
	}
	// Nothing new: read only.
	pr, err = gh.Upsert(ctx, p)
	if err != nil || pr.Changed {
		t.Errorf("third Upsert = %+v, %v", pr, err)
	}
	for _, r := range fake.take() {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("an unchanged re-run wrote: %s", r)
		}
	}
}

func TestGitHubDuplicateAndAuth(t *testing.T) {
	fake := &fakeGitHub{t: t, wantAuth: token, dupOnce: true}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	gh, _ := gitops.NewGitHub(token, srv.URL+"/", "acme", "gitops", srv.Client())
	p := gitops.Proposal{Head: "tagflow/echo/prod", Base: "main", Title: "t", Body: "b"}
	pr, err := gh.Upsert(ctx, p)
	if err != nil || pr.Number != 7 || pr.Created || !pr.Changed {
		t.Fatalf("Upsert after a 422 duplicate = %+v, %v; want the existing PR updated", pr, err)
	}

	bad, _ := gitops.NewGitHub("wrong-"+token, srv.URL+"/", "acme", "gitops", srv.Client())
	_, err = bad.Upsert(ctx, p)
	if !errors.Is(err, gitops.ErrProviderAuth) || strings.Contains(err.Error(), token) {
		t.Errorf("wrong token = %v", err)
	}
}
