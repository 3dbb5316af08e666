// Package local gives tagflow embedded defaults for a first run without any
// infrastructure: a registry served on loopback for the duration of a
// command and persisted under the state directory, and a local GitOps
// repository seeded from examples/gitops that takes direct commits.
package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/registry"
)

// DefaultState is where embedded state lives, relative to the working directory.
const DefaultState = ".tagflow"

// Env is a running embedded setup.
type Env struct {
	Registry *registry.Embedded
	GitOps   string // path of the local GitOps repository; empty when none was set up
	Seeded   bool   // the GitOps repository was created by this run
}

// Close stops the embedded registry.
func (e *Env) Close() error {
	if e.Registry == nil {
		return nil
	}
	return e.Registry.Close()
}

// Setup starts the embedded registry under state and points cfg at it, and
// — when cfg names no GitOps repository and seed exists — creates (once) a
// local GitOps repository from seed and points cfg at it: provider none,
// every environment committed directly, image.tag and image.digest set.
func Setup(ctx context.Context, cfg *config.Config, state, seed string) (*Env, error) {
	e := &Env{}
	var err error
	if e.Registry, err = registry.Serve(filepath.Join(state, "registry")); err != nil {
		return nil, err
	}
	cfg.Registry = e.Registry.Host
	cfg.Registries.Allowed = []string{e.Registry.Host}
	if cfg.GitOps.Repo != "" {
		return e, nil
	}
	if st, err := os.Stat(seed); err != nil || !st.IsDir() {
		return e, nil // no GitOps: releases push and record, and say gitops was skipped
	}
	dir, err := filepath.Abs(filepath.Join(state, "gitops.git"))
	if err != nil {
		e.Close()
		return nil, err
	}
	if e.Seeded, err = gitops.SeedLocal(ctx, dir, seed, cfg.GitOps.BaseBranch); err != nil {
		e.Close()
		return nil, fmt.Errorf("setting up the local GitOps repository: %w", err)
	}
	e.GitOps = dir
	cfg.GitOps.Repo = dir
	cfg.GitOps.Provider = "none"
	cfg.GitOps.Direct = cfg.Environments
	cfg.GitOps.Keys = map[string]string{"image.tag": "tag", "image.digest": "digest"}
	return e, nil
}
