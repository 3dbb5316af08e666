package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// readmeCommands returns the commands of the README's set-up block.
func readmeCommands(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "## Set up on a fresh machine")
	if !ok {
		t.Fatal("README has no set-up section")
	}
	_, block, _ := strings.Cut(rest, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// readmeThen returns the commands of the block after the set-up block.
func readmeThen(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(data), "Then move the tested digest on")
	_, block, _ := strings.Cut(rest, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	for _, line := range strings.Split(block, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			cmds = append(cmds, line)
		}
	}
	return cmds
}

// TestReadmeMainJob walks the README's main job as written, from the
// repository root, on the embedded defaults: release, promote, status.
func TestReadmeMainJob(t *testing.T) {
	cmds := readmeCommands(t)
	if len(cmds) != 2 {
		t.Fatalf("README set-up has %d commands, want exactly 2: %q", len(cmds), cmds)
	}
	if cmds[1] != "./scripts/test.sh" {
		t.Errorf("README test command = %q; .ci/run calls ./scripts/test.sh", cmds[1])
	}
	then := readmeThen(t)
	if len(then) != 2 {
		t.Fatalf("README follow-up has %d commands, want promote and status: %q", len(then), then)
	}
	t.Setenv("TAGFLOW_STATE_DIR", t.TempDir())
	// A machine with only Go: no trivy on the PATH, so the scan is skipped loudly.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	onlyGo := t.TempDir()
	if err := os.Symlink(goBin, filepath.Join(onlyGo, "go")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", onlyGo)
	t.Chdir("../..")
	const prefix = "go run ./cmd/tagflow "
	var outputs []string
	for _, c := range append([]string{cmds[0]}, then...) {
		if !strings.HasPrefix(c, prefix) {
			t.Fatalf("README command %q does not start with %q", c, prefix)
		}
		code, out, errs := tagflow(t, strings.Fields(strings.TrimPrefix(c, prefix))...)
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", c, code, out, errs)
		}
		outputs = append(outputs, out+errs)
	}
	if !strings.Contains(outputs[0], "NOTICE: trivy is not installed") || !strings.Contains(outputs[0], "push        ok") || !strings.Contains(outputs[0], "gitops      ok       pushed main") {
		t.Errorf("release:\n%s", outputs[0])
	}
	if !strings.Contains(outputs[1], "from dev to staging") {
		t.Errorf("promote:\n%s", outputs[1])
	}
	lines := strings.Split(outputs[2], "\n")
	var dev, staging string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) >= 6 && f[0] == "echo-server" && (f[1] == "dev" || f[1] == "staging") {
			if f[4] != f[5] || f[len(f)-1] != "-" {
				t.Errorf("status row drifts: %q", l)
			}
			if f[1] == "dev" {
				dev = f[4]
			} else {
				staging = f[4]
			}
		}
	}
	if dev == "" || dev != staging {
		t.Errorf("staging does not run dev's digest:\n%s", outputs[2])
	}
}

func TestCIRunsTheReadmeTestCommand(t *testing.T) {
	data, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), readmeCommands(t)[1]) {
		t.Errorf(".ci/run does not call the README's test command:\n%s", data)
	}
}
