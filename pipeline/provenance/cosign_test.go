package provenance_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/provenance"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// TestCosignVerifiesAttestation: the provenance tagflow attaches is what
// `cosign verify-attestation --key` accepts, and it refuses another key.
func TestCosignVerifiesAttestation(t *testing.T) {
	bin := os.Getenv("TAGFLOW_COSIGN")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache/tagflow-tools/cosign-v2.6.1/cosign")
	}
	bin = registrytest.Require(t, bin, "scripts/tools.sh builds cosign")
	ctx := context.Background()
	reg := registrytest.Start(t, registrytest.V3, registrytest.Options{})
	c, _ := registry.New()
	repo, _ := registry.ParseRepository(reg.Host + "/acme/echo")
	img, _ := random.Image(1024, 1)
	set, _ := tags.For(tags.Input{Env: "dev", Commit: commit})
	pushed, err := c.Push(ctx, registry.Artifact{Image: img}, repo, set)
	if err != nil {
		t.Fatal(err)
	}
	k := key(t)
	st, err := provenance.New(provenance.Build{Repository: repo.String(), Digest: pushed.Digest, Commit: commit, BuilderID: "https://example.invalid/ci"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provenance.Attach(ctx, c, repo.Digest(pushed.Digest), st, k); err != nil {
		t.Fatal(err)
	}
	writePub := func(pub any) string {
		der, _ := x509.MarshalPKIXPublicKey(pub)
		p := filepath.Join(t.TempDir(), "cosign.pub")
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
		return p
	}
	verify := func(pub string) (string, error) {
		cmd := exec.Command(bin, "verify-attestation", "--key", pub, "--type", "slsaprovenance1",
			"--insecure-ignore-tlog=true", "--allow-http-registry=true", "--output", "json", pushed.DigestRef())
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "TUF_ROOT="+t.TempDir(), "SIGSTORE_NO_CACHE=true")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := verify(writePub(&k.PublicKey))
	if err != nil {
		t.Fatalf("cosign verify-attestation refused tagflow's provenance: %v\n%s", err, out)
	}
	if !strings.Contains(out, "payloadType") {
		t.Errorf("cosign output:\n%s", out)
	}
	if out, err := verify(writePub(&key(t).PublicKey)); err == nil {
		t.Errorf("cosign accepted another key:\n%s", out)
	}
}
