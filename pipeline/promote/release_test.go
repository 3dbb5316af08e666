package promote_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/internal/gittest"
	"github.com/tagflow/tagflow/internal/trivytest"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/promote"
	"github.com/tagflow/tagflow/pipeline/provenance"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/scan"
)

// sourceRepo commits a copy of a Go program as a service's source.
func sourceRepo(t *testing.T, from string, version string) *gittest.Repo {
	t.Helper()
	files := map[string]string{"VERSION": version + "\n"}
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		if b, err := os.ReadFile(filepath.Join(from, f)); err == nil {
			files[f] = string(b)
		}
	}
	r := gittest.New(t)
	r.Commit("feat: service", files)
	return r
}

func TestRelease(t *testing.T) {
	trivy := trivytest.Binary(t)
	w := newWorld(t)
	cache := t.TempDir()
	trivytest.WriteDB(t, cache, trivytest.GoText)
	scanOpts := &scan.Options{Trivy: trivy, CacheDir: cache, Offline: true}

	src := sourceRepo(t, "../../examples/echo-server", "1.4.2")
	meta := filepath.Join(t.TempDir(), "metadata.json")
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	out, err := promote.Release(ctx, w.deps, promote.ReleaseRequest{
		Plan: plan.Request{Source: src.Dir, Service: "echo", Env: "dev", Release: true}, Scan: scanOpts, Metadata: meta, BuildID: "test-1", SigningKey: signer,
	})
	if err != nil {
		t.Fatalf("release: %v (steps %+v)", err, out.Steps)
	}
	var names []string
	for _, s := range out.Steps {
		names = append(names, s.Name+":"+s.Status)
	}
	if strings.Join(names, " ") != "plan:ok build:ok scan:ok push:ok record:ok provenance:ok gitops:ok metadata:ok" {
		t.Errorf("steps = %v", names)
	}
	if w.env("dev") != out.Pushed.Digest || !strings.Contains(w.overlay("main", "dev"), out.Pushed.Digest) {
		t.Errorf("dev does not run the release: env-dev %s", w.env("dev"))
	}
	var m promote.Metadata
	data, _ := os.ReadFile(meta)
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Digest != out.Pushed.Digest || strings.Join(m.Tags, " ") != "v1.4.2 env-dev "+out.Plan.Source.ShortSHA() || !m.Scan.Passed || m.BuildID != "test-1" || len(m.References) != 3 {
		t.Errorf("metadata = %+v", m)
	}
	rec, err := promote.Record(ctx, w.deps.Registry, w.repo.Digest(m.Digest))
	if err != nil || rec == nil || rec.Commit != out.Plan.Source.Commit {
		t.Errorf("attached record = %+v, %v", rec, err)
	}
	// Signed provenance, attached to the digest, verifies; with another key it does not.
	ref := w.repo.Digest(out.Pushed.Digest)
	st, err := provenance.Verify(ctx, w.deps.Registry, ref, provenance.Expect{Commit: out.Plan.Source.Commit, Key: &signer.PublicKey})
	if err != nil || st.Predicate.RunDetails.Metadata.InvocationID != "test-1" {
		t.Errorf("provenance = %+v, %v", st, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := provenance.Verify(ctx, w.deps.Registry, ref, provenance.Expect{Key: &other.PublicKey}); !errors.Is(err, provenance.ErrSignature) {
		t.Errorf("provenance with the wrong key = %v", err)
	}
	// The released digest promotes.
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"}); err != nil {
		t.Errorf("promoting the release: %v", err)
	}

	// A vulnerable service stops at the scan, and nothing reaches the registry.
	vuln := sourceRepo(t, "../scan/testdata/vulnerable", "2.0.0")
	out, err = promote.Release(ctx, w.deps, promote.ReleaseRequest{
		Plan: plan.Request{Source: vuln.Dir, Service: "vulnerable", Env: "dev", Release: true}, Scan: scanOpts,
	})
	var se *promote.StepError
	if !errors.As(err, &se) || se.Step != "scan" || out.Pushed != nil {
		t.Fatalf("vulnerable release = %v, %+v", err, out.Steps)
	}
	repo, _ := registry.ParseRepository(w.reg.Host + "/acme/vulnerable")
	if _, err := w.deps.Registry.Resolve(ctx, repo.Tag("v2.0.0")); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("the refused image was pushed: %v", err)
	}

	// Policy refuses before anything is built.
	_, err = promote.Release(ctx, w.deps, promote.ReleaseRequest{Plan: plan.Request{Source: src.Dir, Service: "echo", Env: "prod", Latest: true}})
	if !errors.As(err, &se) || se.Step != "policy" || !strings.Contains(err.Error(), "latest-env") {
		t.Errorf("policy refusal = %v", err)
	}
}

// TestReleaseMultiArch: two platforms give per-arch tags and an index under
// the plain tags; promotion moves the index.
func TestReleaseMultiArch(t *testing.T) {
	w := newWorld(t)
	w.deps.Config.Platforms = []string{"linux/amd64", "linux/arm64"}
	w.deps.Config.Policy.TagPattern = `^(v\d+\.\d+\.\d+(-(amd64|arm64))?|env-\w+|[0-9a-f]{7}(-(amd64|arm64))?)$`
	src := sourceRepo(t, "../../examples/echo-server", "2.0.0")
	out, err := promote.Release(ctx, w.deps, promote.ReleaseRequest{Plan: plan.Request{Source: src.Dir, Service: "echo", Env: "dev", Release: true}, NoScan: "test"})
	if err != nil {
		t.Fatalf("release: %v %+v", err, out.Steps)
	}
	sha := out.Plan.Source.ShortSHA()
	if len(out.Pushed.Platforms) != 2 {
		t.Fatalf("platforms = %v", out.Pushed.Platforms)
	}
	for tag, want := range map[string]string{
		"v2.0.0": out.Pushed.Digest, "env-dev": out.Pushed.Digest, sha: out.Pushed.Digest,
		"v2.0.0-amd64": out.Pushed.Platforms["amd64"], "v2.0.0-arm64": out.Pushed.Platforms["arm64"],
		sha + "-amd64": out.Pushed.Platforms["amd64"], sha + "-arm64": out.Pushed.Platforms["arm64"],
	} {
		if got, err := w.deps.Registry.Resolve(ctx, w.repo.Tag(tag)); err != nil || got != want {
			t.Errorf("%s = %s, %v; want %s", tag, got, err, want)
		}
	}
	if out.Pushed.Platforms["amd64"] == out.Pushed.Digest {
		t.Error("the plain tags do not name an index")
	}
	if _, err := promote.Promote(ctx, w.deps, promote.Request{Service: "echo", From: "dev", To: "staging"}); err != nil {
		t.Fatal(err)
	}
	if w.env("staging") != out.Pushed.Digest {
		t.Errorf("env-staging = %s, want the index %s", w.env("staging"), out.Pushed.Digest)
	}
}

// TestReleaseWithAScanMadeElsewhere: a scan run outside the pipeline (the
// Dagger module runs Trivy in a container) decides the gate the same way.
func TestReleaseWithAScanMadeElsewhere(t *testing.T) {
	w := newWorld(t)
	report := []byte(`{"SchemaVersion":2,"Results":[{"Target":"app/echo","Type":"gobinary","Vulnerabilities":[` +
		`{"VulnerabilityID":"CVE-2022-32149","PkgName":"golang.org/x/text","InstalledVersion":"v0.3.7","FixedVersion":"0.3.8","Severity":"HIGH"}]}]}`)
	failed, err := scan.Evaluate(report, scan.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := sourceRepo(t, "../../examples/echo-server", "3.1.0")
	out, err := promote.Release(ctx, w.deps, promote.ReleaseRequest{Plan: plan.Request{Source: src.Dir, Service: "echo", Env: "dev", Release: true}, Scanned: failed})
	var se *promote.StepError
	if !errors.As(err, &se) || se.Step != "scan" || out.Pushed != nil {
		t.Fatalf("release with a failed outside scan = %v, %+v", err, out.Steps)
	}
	passed, _ := scan.Evaluate(report, scan.Options{Gate: []string{"CRITICAL"}})
	out, err = promote.Release(ctx, w.deps, promote.ReleaseRequest{Plan: plan.Request{Source: src.Dir, Service: "echo", Env: "dev", Release: true}, Scanned: passed})
	if err != nil {
		t.Fatalf("release with a passed outside scan: %v %+v", err, out.Steps)
	}
	if !out.Record.Scan.Passed || out.Record.Scan.Counts["HIGH"] != 1 || out.Record.Scan.Skipped != "" {
		t.Errorf("record scan = %+v", out.Record.Scan)
	}
}
