// A CI module that composes tagflow: build the echo server's Dockerfile with
// the plan's labels, then push it under its whole tag set — published once,
// every other tag a manifest copy of the same digest.
//
// Run `dagger develop` here to generate the bindings (dagger.gen.go,
// internal/dagger), then for example:
//
//	dagger call ship --source=../.. --registry=registry.example:5000/acme --password=env:REGISTRY_PASSWORD
package main

import (
	"context"
	"strings"

	"example.com/echo-ci/internal/dagger"
)

type EchoCi struct{}

// Ship builds examples/echo-server and pushes it; it returns the digest reference.
func (m *EchoCi) Ship(
	ctx context.Context,
	// The repository checkout, .git included.
	source *dagger.Directory,
	// Registry host[/namespace].
	registry string,
	// Target environment.
	// +default="dev"
	env string,
	// Registry username.
	// +optional
	username string,
	// Registry password or token.
	// +optional
	password *dagger.Secret,
) (string, error) {
	tf := dag.Tagflow()
	tags, err := tf.Tag(ctx, source, "echo-server", env, dagger.TagflowTagOpts{Registry: registry, Path: "examples/echo-server"})
	if err != nil {
		return "", err
	}
	ctr := tf.Build(source.Directory("examples/echo-server"))
	return tf.Push(ctx, ctr, registry+"/echo-server", strings.Split(tags, "\n"), dagger.TagflowPushOpts{Username: username, Password: password})
}
