// Package daggere2e drives the Dagger module through a real engine. It is
// opt-in: TAGFLOW_DAGGER_E2E=1 and TAGFLOW_DAGGER_REGISTRY (an address both
// the engine and the module's own network can reach) must be set, with the
// dagger CLI on the PATH.
package daggere2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/pipeline/registry"
)

func dagger(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("dagger", append([]string{"call", "-m", "../.."}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dagger call %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// TestBuildPushPromote builds the sample service's Dockerfile, pushes it
// with the module under a SHA tag and env-dev, promotes env-prod by manifest
// copy (the code the module's Promote uses), and checks every tag names
// exactly the SHA tag's digest.
func TestBuildPushPromote(t *testing.T) {
	if os.Getenv("TAGFLOW_DAGGER_E2E") != "1" {
		t.Skip("set TAGFLOW_DAGGER_E2E=1 (with a Dagger engine and TAGFLOW_DAGGER_REGISTRY) to run")
	}
	reg := os.Getenv("TAGFLOW_DAGGER_REGISTRY")
	if reg == "" {
		t.Fatal("TAGFLOW_DAGGER_REGISTRY is not set")
	}
	repo := reg + "/echo-server"
	// The CLI cannot pass one call's container to another: build and publish to
	// a scratch tag, then give Push that address.
	dagger(t, "build", "--source", "../../examples/echo-server", "publish", "--address", repo+":e2e-build")
	ref := dagger(t, "push", "--container", repo+":e2e-build", "--repository", repo, "--tag-names", "e2e0001,env-dev")
	d, err := registry.ParseDigestRef(ref)
	if err != nil {
		t.Fatalf("push returned %q: %v", ref, err)
	}
	c, err := registry.New(registry.WithInsecure(strings.Split(reg, "/")[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Retag(context.Background(), d, "env-prod"); err != nil {
		t.Fatal(err)
	}
	r, _ := registry.ParseRepository(repo)
	for _, tag := range []string{"e2e0001", "env-dev", "env-prod"} {
		got, err := c.Resolve(context.Background(), r.Tag(tag))
		if err != nil || got != d.DigestStr() {
			t.Errorf("%s = %s, %v; want the SHA tag's digest %s", tag, got, err, d.DigestStr())
		}
	}
}
