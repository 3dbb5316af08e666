package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5"

	"github.com/tagflow/tagflow/internal/registrytest"
)

// actionlintRepo lays out a repository whose workflows use this action
// locally (uses: ./), so actionlint checks their inputs against action.yml.
func actionlintRepo(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := git.PlainInit(dir, false); err != nil { // actionlint finds the project by its repository
		t.Fatal(err)
	}
	action, err := os.ReadFile("../../action.yml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "action.yml"), action, 0o644)
	wf := filepath.Join(dir, ".github", "workflows")
	os.MkdirAll(wf, 0o755)
	examples, _ := filepath.Glob("../../examples/workflows/*.yml")
	if len(examples) < 4 {
		t.Fatalf("examples/workflows has %d workflows", len(examples))
	}
	for _, e := range examples {
		data, _ := os.ReadFile(e)
		os.WriteFile(filepath.Join(wf, filepath.Base(e)), []byte(strings.ReplaceAll(string(data), "tagflow/tagflow@v1", "./")), 0o644)
	}
	for name, body := range extra {
		os.WriteFile(filepath.Join(wf, name), []byte(body), 0o644)
	}
	return dir
}

func actionlint(t *testing.T, dir string) (string, error) {
	t.Helper()
	bin := os.Getenv("TAGFLOW_ACTIONLINT")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache/tagflow-tools/actionlint-v1.7.12/actionlint")
	}
	bin = registrytest.Require(t, bin, "scripts/tools.sh builds actionlint")
	cmd := exec.Command(bin, "-no-color")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestActionlint(t *testing.T) {
	if out, err := actionlint(t, actionlintRepo(t, nil)); err != nil {
		t.Fatalf("actionlint on action.yml and examples/workflows:\n%s", out)
	}
	// The control: a misspelt input must be caught, or the check above proves nothing.
	bad := "name: bad\non: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: ./\n        with:\n          command: release\n          servce: echo\n"
	out, err := actionlint(t, actionlintRepo(t, map[string]string{"bad.yml": bad}))
	if err == nil || !strings.Contains(out, "servce") {
		t.Errorf("actionlint did not catch an unknown input:\n%s", out)
	}
}
