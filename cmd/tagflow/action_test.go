package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/sethvargo/go-githubactions"
	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/internal/trivytest"
)

// outputs parses a GITHUB_OUTPUT file: name<<DELIMITER, lines, DELIMITER.
func outputs(t *testing.T, path string) map[string]string {
	t.Helper()
	data, _ := os.ReadFile(path)
	out := map[string]string{}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			continue
		}
		var value []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			value = append(value, lines[i])
		}
		out[name] = strings.Join(value, "\n")
	}
	return out
}

func runActionWith(t *testing.T, env map[string]string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return env[k] }}
	gha := githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }), githubactions.WithWriter(&stdout))
	cmd := &cobra.Command{}
	cmd.SetContext(context.Background())
	err := a.runAction(cmd, gha)
	return stdout.String() + stderr.String(), err
}

func TestActionRelease(t *testing.T) {
	trivy := trivytest.Binary(t)
	cache := t.TempDir()
	trivytest.WriteDB(t, cache, trivytest.GoText)
	reg := registrytest.Start(t, registrytest.V3, registrytest.Options{})
	const token = "action-gitops-token-XYZ"
	srv := gittest.NewServer(t, "tagflow", token)
	seed := gittest.New(t)
	seed.Commit("seed", map[string]string{"apps/echo/overlays/dev/values.yaml": "image:\n  tag: none\n  digest: none\n"})
	url := srv.Init(t, "gitops", seed)
	src := gittest.New(t)
	files := map[string]string{"VERSION": "1.4.2\n"}
	for _, f := range []string{"go.mod", "main.go"} {
		b, _ := os.ReadFile(filepath.Join("../../examples/echo-server", f))
		files[f] = string(b)
	}
	head := src.Commit("feat: echo", files)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tagflow.yaml")
	os.WriteFile(cfg, []byte("registry: "+reg.Host+"/acme\ngitops:\n  repo: "+url+"\n  keys: {image.tag: tag, image.digest: digest}\n  direct: [dev]\nscan:\n  trivy: "+trivy+"\n  cache_dir: "+cache+"\n  offline: true\n"), 0o644)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	out, summary := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	env := map[string]string{
		"GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": summary, "GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "1",
		"INPUT_COMMAND": "release", "INPUT_CONFIG": cfg, "INPUT_SERVICE": "echo", "INPUT_ENV": "dev", "INPUT_RELEASE": "true",
		"INPUT_SOURCE": src.Dir, "INPUT_BRANCH": "main", "INPUT_GITOPS-TOKEN": token, "INPUT_REGISTRY-PASSWORD": "registry-secret-ABC",
		"INPUT_SIGNING-KEY": keyPEM, "INPUT_METADATA": filepath.Join(dir, "meta.json"),
	}
	log, err := runActionWith(t, env)
	if err != nil {
		t.Fatalf("action: %v\n%s", err, log)
	}
	o := outputs(t, out)
	if o["version"] != "v1.4.2" || o["tags"] != "v1.4.2\nenv-dev\n"+head[:7] || !strings.HasPrefix(o["digest"], "sha256:") ||
		o["image"] != reg.Host+"/acme/echo@"+o["digest"] || o["scan-passed"] != "true" || o["metadata"] != env["INPUT_METADATA"] {
		t.Errorf("outputs = %q", o)
	}
	sum, _ := os.ReadFile(summary)
	for _, want := range []string{"## tagflow release: echo → dev", "| provenance | ✅ ok | SLSA v1, signed |", "**Digest** `" + o["digest"] + "`",
		"| `v1.4.2` | `" + reg.Host + "/acme/echo:v1.4.2@" + o["digest"] + "` |", "### Vulnerability scan passed", "**GitOps**: pushed main"} {
		if !strings.Contains(string(sum), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	// Secrets: masked first, never shown.
	if !strings.HasPrefix(log, "::add-mask::registry-secret-ABC\n::add-mask::"+token+"\n::add-mask::-----BEGIN PRIVATE KEY-----") {
		t.Errorf("secrets not masked first:\n%.300s", log)
	}
	everything := strings.ReplaceAll(log, "::add-mask::", "MASK") + string(sum)
	outData, _ := os.ReadFile(out)
	everything += string(outData)
	for _, secret := range []string{token, "registry-secret-ABC"} {
		if strings.Count(everything, secret) != 1 { // once: the add-mask command itself
			t.Errorf("secret %q appears outside its mask command", secret)
		}
	}

	// A Dockerfile build goes through the action's Dagger module: a fake
	// dagger records the call and exports a real image.
	fake := t.TempDir()
	img, _ := random.Image(2048, 1)
	tarball.WriteToFile(filepath.Join(fake, "image.tar"), nil, img)
	os.WriteFile(filepath.Join(fake, "dagger"), []byte("#!/bin/sh\necho \"$@\" > \"$FAKE_DAGGER_ARGS\"\nfor last; do :; done\ncp \"$FAKE_DAGGER_IMAGE\" \"$last\"\n"), 0o755)
	t.Setenv("PATH", fake+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_DAGGER_ARGS", filepath.Join(fake, "args"))
	t.Setenv("FAKE_DAGGER_IMAGE", filepath.Join(fake, "image.tar"))
	// (A new commit: another image may never take the first one's SHA tag.)
	head = src.Commit("build: a Dockerfile", map[string]string{"Dockerfile": "FROM scratch\n", "VERSION": "1.4.3\n"})
	env["INPUT_DOCKERFILE"], env["TAGFLOW_ACTION_PATH"] = "Dockerfile", "/actions/tagflow"
	if log, err := runActionWith(t, env); err != nil {
		t.Fatalf("dockerfile release: %v\n%s", err, log)
	}
	called, _ := os.ReadFile(filepath.Join(fake, "args"))
	wantCall := "call -m /actions/tagflow build --source " + src.Dir + " --dockerfile Dockerfile --labels org.opencontainers.image.created="
	if !strings.HasPrefix(string(called), wantCall) || !strings.Contains(string(called), "--labels org.opencontainers.image.revision="+head) || !strings.Contains(string(called), " export --path ") {
		t.Errorf("dagger was called with %q", called)
	}
	if d, _ := img.Digest(); outputs(t, out)["digest"] == "" || strings.Contains(string(called), d.String()) {
		t.Errorf("dockerfile release outputs = %v", outputs(t, out))
	}
	delete(env, "INPUT_DOCKERFILE")

	// A policy refusal becomes error annotations, one per rule.
	env["INPUT_ENV"] = "qa"
	log, err = runActionWith(t, env)
	if err == nil || !strings.Contains(log, "::error title=tagflow policy%3A env-unknown::environment \"qa\" is not configured") {
		t.Errorf("policy refusal: %v\n%s", err, log)
	}
	env["INPUT_COMMAND"] = "deploy"
	if _, err := runActionWith(t, env); err == nil || !strings.Contains(err.Error(), `input command "deploy"`) {
		t.Errorf("unknown command: %v", err)
	}
}
