package local_test

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/local"
)

func TestSetup(t *testing.T) {
	ctx := context.Background()
	state := t.TempDir()
	seed := "../../examples/gitops"
	cfg := config.Default()
	env, err := local.Setup(ctx, cfg, state, seed)
	if err != nil {
		t.Fatal(err)
	}
	if !env.Seeded || cfg.Registry != env.Registry.Host || !slices.Equal(cfg.Registries.Allowed, []string{env.Registry.Host}) ||
		cfg.GitOps.Repo != env.GitOps || !slices.Equal(cfg.GitOps.Direct, cfg.Environments) || cfg.GitOps.Provider != "none" {
		t.Fatalf("setup = %+v, cfg %+v", env, cfg)
	}
	// The seeded repository holds the example overlays.
	r := &gitops.Repo{URL: env.GitOps, Base: "main"}
	rev, err := r.Read(ctx, "apps/forward-auth/overlays/prod/values.yaml")
	if err != nil || !strings.Contains(string(rev.Content), "domain: authentication") {
		t.Errorf("seeded overlay = %q, %v", rev.Content, err)
	}
	env.Close()

	// A second run finds the repository and seeds nothing.
	cfg2 := config.Default()
	env2, err := local.Setup(ctx, cfg2, state, seed)
	if err != nil {
		t.Fatal(err)
	}
	defer env2.Close()
	if env2.Seeded || cfg2.GitOps.Repo != env.GitOps {
		t.Errorf("second setup seeded again or moved: %+v", env2)
	}
	// A configured GitOps repository is left alone.
	cfg3 := config.Default()
	cfg3.GitOps.Repo = "https://git.example/acme/gitops"
	env3, err := local.Setup(ctx, cfg3, filepath.Join(t.TempDir(), "s"), seed)
	if err != nil {
		t.Fatal(err)
	}
	defer env3.Close()
	if env3.GitOps != "" || cfg3.GitOps.Repo != "https://git.example/acme/gitops" {
		t.Errorf("configured repo replaced: %+v", cfg3.GitOps)
	}
}
