package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/labels"
)

// labelledLayout writes a random image labelled with a revision.
func labelledLayout(t *testing.T, revision string) string {
	t.Helper()
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{labels.Revision: revision}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRegistryCommands(t *testing.T) {
	const user, pass = "ci", "hunter2-registry-secret"
	reg := registrytest.Start(t, registrytest.V2, registrytest.Options{TLS: true, User: user, Password: pass})
	r := gittest.New(t)
	head := r.Commit("feat: echo", map[string]string{"echo/main.go": "package main\n", "echo/VERSION": "2.1.0\n"})
	cfg := filepath.Join(t.TempDir(), "tagflow.yaml")
	if err := os.WriteFile(cfg, []byte("registry: "+reg.Host+"/acme\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAGFLOW_REGISTRY_USERNAME", user)
	t.Setenv("TAGFLOW_REGISTRY_PASSWORD", pass)
	conn := []string{"--config", cfg, "--ca-file", reg.CAFile}
	var all strings.Builder
	run := func(args ...string) (int, string, string) {
		code, out, errs := tagflow(t, args...)
		all.WriteString(out + errs)
		return code, out, errs
	}

	src := filepath.Join(r.Dir, "echo")
	img := labelledLayout(t, head)
	code, out, errs := run(append([]string{"push", "--image", img, "--service", "echo", "--env", "staging", "--release", "--source", src, "--json"}, conn...)...)
	if code != exitOK {
		t.Fatalf("push exit %d: %s", code, errs)
	}
	var pushed struct {
		Digest     string
		References []string
	}
	if err := json.Unmarshal([]byte(out), &pushed); err != nil {
		t.Fatalf("push --json: %v\n%s", err, out)
	}
	repo := reg.Host + "/acme/echo"
	if len(pushed.References) != 3 || pushed.References[0] != repo+":v2.1.0@"+pushed.Digest {
		t.Fatalf("pushed %+v", pushed)
	}

	// An image labelled with another commit is refused before pushing.
	code, _, errs = run(append([]string{"push", "--image", labelledLayout(t, strings.Repeat("0", 40)), "--service", "echo", "--env", "dev", "--source", src}, conn...)...)
	if code != exitFailed || !strings.Contains(errs, "built from another commit") {
		t.Errorf("push of a mislabelled image: exit %d, %s", code, errs)
	}

	// Promote: env-prod to the tested digest.
	code, out, errs = run(append([]string{"tag", "--image", repo + "@" + pushed.Digest, "--tag", "env-prod"}, conn...)...)
	if code != exitOK || !strings.Contains(out, "created    "+repo+":env-prod → "+pushed.Digest) {
		t.Fatalf("tag: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = run(append([]string{"tag", "--image", repo + "@" + pushed.Digest, "--tag", "env-prod"}, conn...)...)
	if code != exitOK || !strings.Contains(out, "unchanged") {
		t.Errorf("re-tag: exit %d %s", code, out)
	}
	code, _, errs = run(append([]string{"tag", "--image", repo + "@" + pushed.Digest, "--tag", "env-prod-eu"}, conn...)...)
	if code != exitFailed || !strings.Contains(errs, "tag-pattern") {
		t.Errorf("tag outside the pattern: exit %d %s", code, errs)
	}

	code, out, errs = run(append([]string{"verify", "--service", "echo", "--env", "prod", "--sha", head[:7]}, conn...)...)
	if code != exitOK || strings.Count(out, pushed.Digest) != 2 {
		t.Errorf("verify: exit %d\n%s%s", code, out, errs)
	}
	code, _, errs = run(append([]string{"verify", "--service", "echo", "--env", "dev", "--sha", head}, conn...)...)
	if code != exitFailed || !strings.Contains(errs, "does not name the approved commit") {
		t.Errorf("verify of an env without the tag: exit %d %s", code, errs)
	}

	code, out, errs = run(append([]string{"retain", "--service", "echo", "--keep", "1"}, conn...)...)
	if code != exitOK || !strings.Contains(out, "1 digests, 1 kept, 0 would delete") {
		t.Errorf("retain: exit %d\n%s%s", code, out, errs)
	}

	// A wrong password: clear error, exit 1, and the secret nowhere.
	t.Setenv("TAGFLOW_REGISTRY_PASSWORD", "wrong-"+pass)
	code, _, errs = run(append([]string{"verify", "--service", "echo", "--env", "prod", "--sha", head}, conn...)...)
	if code != exitFailed || !strings.Contains(errs, "refused the credentials") {
		t.Errorf("wrong password: exit %d %s", code, errs)
	}
	if strings.Contains(all.String(), pass) {
		t.Errorf("the registry password appeared in output:\n%s", all.String())
	}
}

func TestPasswordNeverFromAFlag(t *testing.T) {
	code, _, errs := tagflow(t, "verify", "--service", "echo", "--env", "prod", "--sha", "1a2b3c4", "--password", "x")
	if code != exitUsage || !strings.Contains(errs, "unknown flag: --password") {
		t.Errorf("exit %d %s", code, errs)
	}
	t.Setenv("TAGFLOW_REGISTRY_PASSWORD", "")
	code, _, errs = tagflow(t, "verify", "--service", "echo", "--env", "prod", "--sha", "1a2b3c4", "--username", "ci")
	if code != exitUsage || !strings.Contains(errs, "without a password") {
		t.Errorf("username without password: exit %d %s", code, errs)
	}
}
