package gitops_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/pipeline/gitops"
)

var ctx = context.Background()

const token = "gitops-token-s3cret"

// gitopsServer serves a GitOps repository seeded with an overlay per env.
func gitopsServer(t *testing.T) (*gittest.Server, string) {
	t.Helper()
	srv := gittest.NewServer(t, "tagflow", token)
	seed := gittest.New(t)
	files := map[string]string{}
	for _, env := range []string{"dev", "staging", "prod"} {
		files["apps/echo/overlays/"+env+"/values.yaml"] = "# echo in " + env + "\nimage:\n  repository: ghcr.io/acme/echo\n  tag: v1.0.0 # deployed\n  digest: " + oldDigest + "\n"
	}
	seed.Commit("seed", files)
	return srv, srv.Init(t, "gitops", seed)
}

func change(digest, tag string) gitops.Change {
	return gitops.Change{
		Service: "echo", Env: "prod", Path: "apps/echo/overlays/prod/values.yaml",
		Edits:   []gitops.Edit{{Path: "image.digest", Value: digest}, {Path: "image.tag", Value: tag}},
		Message: "deploy(echo): prod → " + tag,
	}
}

func show(t *testing.T, srv *gittest.Server, ref string) string {
	return srv.Git(t, "gitops", "show", ref+":apps/echo/overlays/prod/values.yaml")
}

func TestProposeBranch(t *testing.T) {
	srv, url := gitopsServer(t)
	r := &gitops.Repo{URL: url, Base: "main", Token: token}

	res, err := r.Propose(ctx, change(newDigest, "v1.4.2"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Pushed || res.Branch != "tagflow/echo/prod" || res.UpToDate {
		t.Fatalf("Propose = %+v", res)
	}
	got := show(t, srv, "refs/heads/tagflow/echo/prod")
	if want := "# echo in prod\nimage:\n  repository: ghcr.io/acme/echo\n  tag: v1.4.2 # deployed\n  digest: " + newDigest + "\n"; got != want {
		t.Errorf("branch file:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(show(t, srv, "refs/heads/main"), oldDigest) {
		t.Error("main was changed; changes go through the branch")
	}
	msg := srv.Git(t, "gitops", "log", "-1", "--format=%an <%ae>%n%B", "refs/heads/tagflow/echo/prod")
	if !strings.HasPrefix(msg, "tagflow <") || !strings.Contains(msg, "deploy(echo): prod → v1.4.2") {
		t.Errorf("commit:\n%s", msg)
	}

	// The same change again: no new commit.
	head := strings.TrimSpace(srv.Git(t, "gitops", "rev-parse", "refs/heads/tagflow/echo/prod"))
	res, err = r.Propose(ctx, change(newDigest, "v1.4.2"), false)
	if err != nil || res.Pushed || res.Commit != head {
		t.Errorf("re-run = %+v, %v; want no push, commit %s", res, err, head)
	}
	if now := strings.TrimSpace(srv.Git(t, "gitops", "rev-parse", "refs/heads/tagflow/echo/prod")); now != head {
		t.Errorf("re-run moved the branch to %s", now)
	}

	// A new digest replaces the branch's commit (one commit on top of main, not a pile).
	third := "sha256:" + strings.Repeat("3", 64)
	if res, err = r.Propose(ctx, change(third, "v1.4.3"), false); err != nil || !res.Pushed {
		t.Fatalf("new digest = %+v, %v", res, err)
	}
	if !strings.Contains(show(t, srv, "refs/heads/tagflow/echo/prod"), third) {
		t.Error("branch does not carry the new digest")
	}
	if n := strings.TrimSpace(srv.Git(t, "gitops", "rev-list", "--count", "main..tagflow/echo/prod")); n != "1" {
		t.Errorf("branch is %s commits ahead of main, want 1", n)
	}

	// Values main already has: nothing to propose.
	res, err = r.Propose(ctx, change(oldDigest, "v1.0.0"), false)
	if err != nil || !res.UpToDate || res.Pushed {
		t.Errorf("proposal of what main has = %+v, %v", res, err)
	}
}

func TestProposeDirect(t *testing.T) {
	srv, url := gitopsServer(t)
	r := &gitops.Repo{URL: url, Base: "main", Token: token}
	res, err := r.Propose(ctx, change(newDigest, "v1.4.2"), true)
	if err != nil || !res.Pushed || res.Branch != "main" {
		t.Fatalf("direct = %+v, %v", res, err)
	}
	if !strings.Contains(show(t, srv, "refs/heads/main"), newDigest) {
		t.Error("main does not carry the new digest")
	}
}

// TestPushRace moves the target under a running update: the first push is
// rejected, the update starts over from a fresh clone and lands on top.
func TestPushRace(t *testing.T) {
	for _, direct := range []bool{false, true} {
		t.Run(map[bool]string{false: "branch", true: "direct"}[direct], func(t *testing.T) {
			srv, url := gitopsServer(t)
			r := &gitops.Repo{URL: url, Base: "main", Token: token}
			target := "tagflow/echo/prod"
			if direct {
				target = "main"
			} else if _, err := r.Propose(ctx, change(newDigest, "v1.4.2"), false); err != nil {
				t.Fatal(err)
			}
			var raced atomic.Int32
			r.SetBeforePush(func() {
				if raced.Add(1) == 1 {
					// Someone else pushes a commit on top of the target first.
					dir := t.TempDir()
					bare := filepath.Join(srv.Root, "gitops.git")
					for _, args := range [][]string{
						{"clone", "-q", "--branch", target, bare, dir},
						{"-C", dir, "-c", "user.name=x", "-c", "user.email=x@x", "commit", "-q", "--allow-empty", "-m", "someone else"},
						{"-C", dir, "push", "-q", "origin", "HEAD:refs/heads/" + target},
					} {
						cmd := exec.Command("git", args...)
						cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1")
						if out, err := cmd.CombinedOutput(); err != nil {
							t.Errorf("racing git %v: %v %s", args, err, out)
						}
					}
				}
			})
			third := "sha256:" + strings.Repeat("3", 64)
			res, err := r.Propose(ctx, change(third, "v1.4.3"), direct)
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempts != 2 || !res.Pushed {
				t.Errorf("race: %+v, want a push on the second attempt", res)
			}
			if direct && !strings.Contains(srv.Git(t, "gitops", "log", "--format=%s", "main"), "someone else") {
				t.Error("the other push was lost")
			}
			if !strings.Contains(srv.Git(t, "gitops", "show", target+":apps/echo/overlays/prod/values.yaml"), third) {
				t.Error("the update was lost")
			}
		})
	}
}

func TestProposeErrors(t *testing.T) {
	_, url := gitopsServer(t)
	wrong := &gitops.Repo{URL: url, Base: "main", Token: "wrong-" + token}
	_, err := wrong.Propose(ctx, change(newDigest, "v1.4.2"), false)
	if err == nil || !strings.Contains(err.Error(), "refused the token") || strings.Contains(err.Error(), token) {
		t.Errorf("wrong token = %v; want a clear error without the token", err)
	}
	r := &gitops.Repo{URL: url, Base: "main", Token: token}
	ch := change(newDigest, "v1.4.2")
	ch.Path = "apps/nope/overlays/prod/values.yaml"
	if _, err := r.Propose(ctx, ch, false); !errors.Is(err, gitops.ErrNoFile) || !strings.Contains(err.Error(), ch.Path) {
		t.Errorf("missing file = %v", err)
	}
	ch.Create = true
	if res, err := r.Propose(ctx, ch, false); err != nil || !res.Pushed {
		t.Errorf("missing file with create = %+v, %v", res, err)
	}
	ch = change(newDigest, "v1.4.2")
	ch.Edits = append(ch.Edits, gitops.Edit{Path: "image.nokey", Value: "x"})
	if _, err := r.Propose(ctx, ch, false); !errors.Is(err, gitops.ErrNoKey) {
		t.Errorf("missing key = %v", err)
	}
}
