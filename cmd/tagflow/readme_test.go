package main

import (
	"os"
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

// TestReadmeMainJob runs the README's first command as written, from the
// repository root, the way a new user would.
func TestReadmeMainJob(t *testing.T) {
	cmds := readmeCommands(t)
	if len(cmds) != 2 {
		t.Fatalf("README set-up has %d commands, want exactly 2: %q", len(cmds), cmds)
	}
	if cmds[1] != "./scripts/test.sh" {
		t.Errorf("README test command = %q; .ci/run calls ./scripts/test.sh", cmds[1])
	}
	const prefix = "go run ./cmd/tagflow "
	if !strings.HasPrefix(cmds[0], prefix) {
		t.Fatalf("README main job %q does not start with %q", cmds[0], prefix)
	}
	t.Chdir("../..")
	code, out, errs := tagflow(t, strings.Fields(strings.TrimPrefix(cmds[0], prefix))...)
	if code != exitOK {
		t.Fatalf("README main job exited %d:\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "Plan for echo-server → dev") || !strings.Contains(out, "Policy: allowed") {
		t.Errorf("README main job printed:\n%s", out)
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
