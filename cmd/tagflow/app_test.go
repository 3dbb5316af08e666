package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/internal/gittest"
)

// tagflow runs the CLI in-process and returns exit code, stdout and stderr.
func tagflow(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func sampleRepo(t *testing.T) (*gittest.Repo, string) {
	t.Helper()
	r := gittest.New(t)
	head := r.Commit("feat: echo", map[string]string{"echo/main.go": "package main\n", "echo/VERSION": "1.4.2\n"})
	return r, head
}

func TestPlanAllowed(t *testing.T) {
	r, head := sampleRepo(t)
	code, out, errs := tagflow(t, "plan", "--source", filepath.Join(r.Dir, "echo"), "--service", "echo", "--env", "prod", "--release")
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errs)
	}
	for _, want := range []string{"Plan for echo → prod", "v1.4.2  env-prod  " + head[:7], "localhost:5000/echo:v1.4.2", "org.opencontainers.image.revision=" + head, "Policy: allowed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestPlanRefused(t *testing.T) {
	r, _ := sampleRepo(t)
	code, out, _ := tagflow(t, "plan", "--source", filepath.Join(r.Dir, "echo"), "--service", "echo", "--env", "prod", "--latest")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d", code, exitFailed)
	}
	if !strings.Contains(out, "[latest-env]") || !strings.Contains(out, "Policy: refused (1 violation)") {
		t.Errorf("output does not explain the refusal:\n%s", out)
	}
}

func TestPlanJSON(t *testing.T) {
	r, head := sampleRepo(t)
	code, out, errs := tagflow(t, "plan", "--json", "--source", filepath.Join(r.Dir, "echo"), "--service", "echo", "--env", "staging", "--registry", "ghcr.io/acme")
	if code != exitFailed {
		t.Fatalf("exit %d, want %d (registry not allowed)", code, exitFailed)
	}
	var got struct {
		Version    string            `json:"version"`
		Tags       []string          `json:"tags"`
		Images     []string          `json:"images"`
		Labels     map[string]string `json:"labels"`
		Violations []struct{ Rule, Input, Message string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if got.Version != "" || len(got.Tags) != 2 || got.Tags[1] != head[:7] || got.Images[0] != "ghcr.io/acme/echo:env-staging" {
		t.Errorf("plan = %+v", got)
	}
	if len(got.Violations) != 1 || got.Violations[0].Rule != "registry-allowed" || got.Violations[0].Input != "ghcr.io/acme" {
		t.Errorf("violations = %+v", got.Violations)
	}
	if !strings.Contains(errs, "registry-allowed") {
		t.Errorf("stderr does not repeat the violation for humans: %q", errs)
	}
}

func TestUsageErrors(t *testing.T) {
	r, _ := sampleRepo(t)
	src := filepath.Join(r.Dir, "echo")
	for name, args := range map[string][]string{
		"unknown command":  {"plam"},
		"missing --env":    {"plan", "--service", "echo", "--source", src},
		"unknown flag":     {"plan", "--service", "echo", "--env", "dev", "--colour"},
		"bad service":      {"plan", "--service", "Echo!", "--env", "dev", "--source", src},
		"stray argument":   {"plan", "--service", "echo", "--env", "dev", "--source", src, "extra"},
		"no source at all": {"plan", "--service", "echo", "--env", "dev"},
	} {
		t.Run(name, func(t *testing.T) {
			code, _, errs := tagflow(t, args...)
			if code != exitUsage || !strings.Contains(errs, "tagflow: ") {
				t.Errorf("exit %d stderr %q, want %d with a message", code, errs, exitUsage)
			}
		})
	}
}

func TestBadConfigNamesFileAndLine(t *testing.T) {
	r, _ := sampleRepo(t)
	cfg := filepath.Join(t.TempDir(), "tagflow.yaml")
	if err := os.WriteFile(cfg, []byte("registry: ghcr.io/acme\nenviroments: [dev]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := tagflow(t, "--config", cfg, "plan", "--source", filepath.Join(r.Dir, "echo"), "--service", "echo", "--env", "dev")
	if code != exitFailed || !strings.Contains(errs, cfg+`:2: unknown key "enviroments"`) {
		t.Errorf("exit %d stderr %q", code, errs)
	}
}

func TestNoCommitsIsClear(t *testing.T) {
	r := gittest.New(t)
	code, _, errs := tagflow(t, "plan", "--source", r.Dir, "--service", "echo", "--env", "dev")
	if code != exitFailed || !strings.Contains(errs, "repository has no commits") {
		t.Errorf("exit %d stderr %q", code, errs)
	}
}

func TestVersionNext(t *testing.T) {
	r := gittest.New(t)
	rel := r.Commit("feat: first", nil)
	r.Tag("v1.4.2", rel, true)
	fix := r.Commit("fix: nil map", nil)
	r.Commit("chore: deps", nil)
	feat := r.Commit("feat(api): add /version", nil)
	code, out, errs := tagflow(t, "version", "next", "--source", r.Dir)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if out != "v1.5.0\n" {
		t.Errorf("stdout = %q, want only the version", out)
	}
	for _, want := range []string{"last release   v1.4.2", "commits since  3", "bump           minor", feat[:7] + "  minor  feat(api): add /version", fix[:7] + "  patch  fix: nil map"} {
		if !strings.Contains(errs, want) {
			t.Errorf("explanation lacks %q:\n%s", want, errs)
		}
	}
}

func TestVersion(t *testing.T) {
	r, _ := sampleRepo(t)
	code, out, errs := tagflow(t, "version", "--source", filepath.Join(r.Dir, "echo"))
	if code != exitOK || out != "v1.4.2 (from file)\n" {
		t.Errorf("exit %d out %q err %q", code, out, errs)
	}
}

func TestHelpTeaches(t *testing.T) {
	code, out, _ := tagflow(t, "plan", "--help")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"--release", "--latest", "policy", "Examples:", "tagflow plan --source examples/echo-server"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan --help lacks %q", want)
		}
	}
}

func TestPolicyExport(t *testing.T) {
	code, out, errs := tagflow(t, "policy", "export", "--format", "gatekeeper", "--digest-namespace", "prod")
	if code != exitOK || !strings.Contains(out, "kind: ConstraintTemplate") || !strings.Contains(out, "namespaces: ['prod']") || !strings.Contains(out, "localhost:5000") {
		t.Errorf("gatekeeper export: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = tagflow(t, "policy", "export", "--format", "kyverno")
	if code != exitOK || !strings.Contains(out, "kind: ClusterPolicy") || strings.Contains(out, "digest-pinned") {
		t.Errorf("kyverno export: exit %d\n%s", code, out)
	}
	if code, _, _ = tagflow(t, "policy", "export", "--format", "opa"); code != exitUsage {
		t.Errorf("unknown format: exit %d", code)
	}
}

func TestWebhookNeedsASecret(t *testing.T) {
	t.Setenv("TAGFLOW_WEBHOOK_SECRET", "")
	code, _, errs := tagflow(t, "webhook", "serve", "--addr", "127.0.0.1:0")
	if code != exitUsage || !strings.Contains(errs, "TAGFLOW_WEBHOOK_SECRET") {
		t.Errorf("exit %d %s", code, errs)
	}
}
