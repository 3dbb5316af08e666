package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/internal/gittest"
)

func TestImageTag(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/acme/echo:v1.4.2@sha256:abc":      "v1.4.2",
		"127.0.0.1:5000/echo@sha256:abc":           "",
		"127.0.0.1:5000/acme/echo:1a2b3c4@sha256:": "1a2b3c4",
		"echo": "",
	} {
		if got := imageTag(in); got != want {
			t.Errorf("imageTag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGitOpsPR(t *testing.T) {
	const token = "cli-gitops-token"
	srv := gittest.NewServer(t, "tagflow", token)
	seed := gittest.New(t)
	seed.Commit("seed", map[string]string{"apps/echo/overlays/prod/values.yaml": "image:\n  tag: v1.0.0\n  digest: sha256:" + strings.Repeat("1", 64) + "\n"})
	url := srv.Init(t, "gitops", seed)
	cfg := filepath.Join(t.TempDir(), "tagflow.yaml")
	os.WriteFile(cfg, []byte("gitops:\n  repo: "+url+"\n  keys:\n    image.tag: tag\n    image.digest: digest\n"), 0o644)
	t.Setenv(envGitOpsToken, token)
	digest := "sha256:" + strings.Repeat("2", 64)
	args := []string{"--config", cfg, "gitops-pr", "--service", "echo", "--env", "prod",
		"--image", "ghcr.io/acme/echo:v1.4.2@" + digest, "--tag", "env-prod", "--tag", "1a2b3c4", "--commit", strings.Repeat("a", 40)}

	code, out, errs := tagflow(t, args...)
	if code != exitOK || strings.TrimSpace(out) != "tagflow/echo/prod" || !strings.Contains(errs, "pushed") {
		t.Fatalf("gitops-pr: exit %d\n%s%s", code, out, errs)
	}
	file := srv.Git(t, "gitops", "show", "tagflow/echo/prod:apps/echo/overlays/prod/values.yaml")
	if file != "image:\n  tag: v1.4.2\n  digest: "+digest+"\n" {
		t.Errorf("overlay on the branch:\n%s", file)
	}
	msg := srv.Git(t, "gitops", "log", "-1", "--format=%B", "tagflow/echo/prod")
	for _, want := range []string{"deploy(echo): prod → v1.4.2", "digest: " + digest, "tags: v1.4.2 env-prod 1a2b3c4", "source-commit: " + strings.Repeat("a", 40)} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message lacks %q:\n%s", want, msg)
		}
	}
	code, _, errs = tagflow(t, args...)
	if code != exitOK || !strings.Contains(errs, "already carries this change") {
		t.Errorf("re-run: exit %d %s", code, errs)
	}

	// Usage errors: traversal in a name, a moving tag only, a bad env.
	for _, bad := range [][]string{
		{"--service", "../../etc", "--env", "prod", "--image", "r/x@" + digest, "--tag", "1a2b3c4"},
		{"--service", "echo", "--env", "prod", "--image", "r/x@" + digest, "--tag", "env-prod"},
		{"--service", "echo", "--env", "pr od", "--image", "r/x@" + digest, "--tag", "1a2b3c4"},
	} {
		code, _, errs := tagflow(t, append([]string{"--config", cfg, "gitops-pr"}, bad...)...)
		if code != exitUsage {
			t.Errorf("gitops-pr %v: exit %d %s", bad, code, errs)
		}
	}
	// A wrong token: exit 1, token not shown.
	t.Setenv(envGitOpsToken, "wrong-"+token)
	code, out, errs = tagflow(t, append(args[:len(args)-2], "--commit", strings.Repeat("b", 40))...)
	if code != exitFailed || !strings.Contains(errs, "refused the token") || strings.Contains(out+errs, token) {
		t.Errorf("wrong token: exit %d %s", code, errs)
	}
}
