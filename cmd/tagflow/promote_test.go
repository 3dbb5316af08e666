package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/internal/browsertest"
	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/internal/trivytest"
)

func TestReleasePromoteStatus(t *testing.T) {
	trivy := trivytest.Binary(t)
	cache := t.TempDir()
	trivytest.WriteDB(t, cache, trivytest.GoText)
	reg := registrytest.Start(t, registrytest.V3, registrytest.Options{})
	const token = "cli-flow-token"
	srv := gittest.NewServer(t, "tagflow", token)
	seed := gittest.New(t)
	files := map[string]string{}
	for _, env := range []string{"dev", "staging", "prod"} {
		files["apps/echo/overlays/"+env+"/values.yaml"] = "image:\n  tag: none # set by tagflow\n  digest: none\n"
	}
	seed.Commit("seed", files)
	url := srv.Init(t, "gitops", seed)

	src := gittest.New(t)
	echo := map[string]string{"VERSION": "1.4.2\n"}
	for _, f := range []string{"go.mod", "main.go"} {
		b, _ := os.ReadFile(filepath.Join("../../examples/echo-server", f))
		echo[f] = string(b)
	}
	head := src.Commit("feat: echo", echo)

	cfg := filepath.Join(t.TempDir(), "tagflow.yaml")
	rel, _ := filepath.Rel(filepath.Dir(cfg), src.Dir)
	os.WriteFile(cfg, []byte("registry: "+reg.Host+"/acme\nservices:\n  - name: echo\n    source: "+rel+
		"\ngitops:\n  repo: "+url+"\n  keys: {image.tag: tag, image.digest: digest}\n  direct: [dev, staging]\n"+
		"scan:\n  trivy: "+trivy+"\n  cache_dir: "+cache+"\n  offline: true\n"), 0o644)
	t.Setenv(envGitOpsToken, token)
	meta := filepath.Join(t.TempDir(), "meta.json")

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile := filepath.Join(t.TempDir(), "cosign.key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pubFile := filepath.Join(t.TempDir(), "cosign.pub")
	os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
	code, out, errs := tagflow(t, "--config", cfg, "release", "--service", "echo", "--env", "dev", "--release", "--metadata", meta, "--signing-key", keyFile)
	if code != exitOK {
		t.Fatalf("release: exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"scan        ok", "push        ok", "record      ok", "provenance  ok", "gitops      ok  pushed main", "metadata    ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("release output lacks %q:\n%s", want, out)
		}
	}
	var m struct {
		Digest string
		Tags   []string
	}
	data, _ := os.ReadFile(meta)
	json.Unmarshal(data, &m)
	if strings.Join(m.Tags, " ") != "v1.4.2 env-dev "+head[:7] {
		t.Fatalf("metadata tags = %v", m.Tags)
	}
	code, out, errs = tagflow(t, "provenance", "verify", "--image", reg.Host+"/acme/echo@"+m.Digest, "--key", pubFile, "--commit", head)
	if code != exitOK || !strings.Contains(out, "signature verified") || !strings.Contains(out, head) {
		t.Errorf("provenance verify: exit %d\n%s%s", code, out, errs)
	}

	code, out, errs = tagflow(t, "--config", cfg, "promote", "--service", "echo", "--from", "dev", "--to", "staging")
	if code != exitOK || !strings.Contains(out, "promoted echo "+m.Digest+" (v1.4.2, commit "+head[:7]+") from dev to staging") {
		t.Fatalf("promote: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = tagflow(t, "--config", cfg, "promote", "--service", "echo", "--from", "dev", "--to", "staging")
	if code != exitOK || !strings.Contains(out, "nothing to do") {
		t.Errorf("re-promote: exit %d %s", code, out)
	}
	code, _, errs = tagflow(t, "--config", cfg, "promote", "--service", "echo", "--from", "dev", "--to", "prod")
	if code != exitUsage || !strings.Contains(errs, "--skip") {
		t.Errorf("dev→prod: exit %d %s", code, errs)
	}
	code, out, _ = tagflow(t, "--config", cfg, "status")
	if code != exitOK || strings.Count(out, "v1.4.2") != 2 {
		t.Errorf("status: exit %d\n%s", code, out)
	}
	// prod through a branch: env-prod moves, main's overlay waits for review: drift, exit 1.
	code, out, errs = tagflow(t, "--config", cfg, "promote", "--service", "echo", "--from", "staging", "--to", "prod")
	if code != exitOK || !strings.Contains(out, "gitops: pushed tagflow/echo/prod") {
		t.Fatalf("staging→prod: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = tagflow(t, "--config", cfg, "status", "--json")
	var cells []struct{ Env, Drift string }
	json.Unmarshal([]byte(out), &cells)
	if code != exitOK || len(cells) != 3 || cells[2].Drift == "" {
		t.Errorf("status --json: exit %d %+v", code, cells)
	}
	if code, _, _ = tagflow(t, "--config", cfg, "status"); code != exitFailed {
		t.Errorf("status with drift: exit %d, want %d", code, exitFailed)
	}

	// The dashboard, loaded in a real browser.
	page := filepath.Join(t.TempDir(), "status.html")
	if code, _, errs = tagflow(t, "--config", cfg, "status", "--html", page); code != exitFailed || !strings.Contains(errs, "wrote "+page) {
		t.Fatalf("status --html: exit %d %s", code, errs)
	}
	dom := browsertest.DOM(t, "file://"+page)
	for _, want := range []string{
		`data-env="dev" data-digest="` + m.Digest + `" data-drift="false"`,
		`data-env="staging" data-digest="` + m.Digest + `" data-drift="false"`,
		`data-env="prod" data-digest="` + m.Digest + `" data-drift="true"`,
		"Drift: env-prod is " + m.Digest, "v1.4.2", head[:7], "Recent deployments",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("dashboard DOM lacks %q", want)
		}
	}
	if strings.Contains(dom, "<script") {
		t.Error("the dashboard uses JavaScript")
	}
	shot := filepath.Join(t.TempDir(), "dashboard-phone.png")
	browsertest.Screenshot(t, "file://"+page, shot, 390, 844)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 390 {
		t.Errorf("phone screenshot is %dpx wide", b.Dx())
	}
	// The drift is visible: the prod card's red border is in the picture.
	red := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 180 && g>>8 < 60 && bl>>8 < 80 {
				red++
			}
		}
	}
	if red < 50 {
		t.Errorf("no drift highlight in the screenshot (%d red pixels)", red)
	}
	t.Logf("dashboard screenshot: %s", shot)
	if dir := os.Getenv("TAGFLOW_ARTIFACTS"); dir != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(filepath.Join(dir, "dashboard-phone.png"), data, 0o644)
	}
}
