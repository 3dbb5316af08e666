// Traceable image tags and digest-exact promotions.
//
// tagflow plans every image's tags (vX.Y.Z for releases, env-<env> for the
// environment it runs in, the 7-character commit SHA always), builds and
// scans it, pushes it once, and moves the tested digest between environments
// by copying its manifest — never by rebuilding or re-publishing, which would
// change the digest. GitOps overlays change through pull requests.
//
// The module's own code runs in its own network namespace: a registry on the
// caller's 127.0.0.1 is not reachable from it (the engine, which publishes and
// pulls, is). Use a registry address the module can reach.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tagflow/tagflow/internal/dagger"
	"github.com/tagflow/tagflow/pipeline/config"
	"github.com/tagflow/tagflow/pipeline/gitops"
	ocilabels "github.com/tagflow/tagflow/pipeline/labels"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/promote"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/scan"
	"github.com/tagflow/tagflow/pipeline/tags"
)

// Tagflow is the module.
type Tagflow struct{}

// Build builds a Dockerfile into a container carrying the given labels (pass
// the labels of Tag's plan so the image traces back to its commit).
func (m *Tagflow) Build(
	// The build context.
	source *dagger.Directory,
	// Path of the Dockerfile inside the context.
	// +default="Dockerfile"
	dockerfile string,
	// Platform to build for, e.g. linux/arm64.
	// +optional
	platform dagger.Platform,
	// Build arguments as KEY=VALUE.
	// +optional
	buildArgs []string,
	// Stage to build.
	// +optional
	target string,
	// Labels as KEY=VALUE.
	// +optional
	labels []string,
) (*dagger.Container, error) {
	args, err := ocilabels.Pairs("build-args", buildArgs)
	if err != nil {
		return nil, err
	}
	var bargs []dagger.BuildArg
	for _, kv := range args {
		bargs = append(bargs, dagger.BuildArg{Name: kv[0], Value: kv[1]})
	}
	ctr := source.DockerBuild(dagger.DirectoryDockerBuildOpts{Dockerfile: dockerfile, Platform: platform, BuildArgs: bargs, Target: target})
	lbls, err := ocilabels.Pairs("labels", labels)
	if err != nil {
		return nil, err
	}
	for _, kv := range lbls {
		ctr = ctr.WithLabel(kv[0], kv[1])
	}
	return ctr, nil
}

// Scan runs Trivy on a container and returns its JSON report; it fails when
// a finding of the gate's severities is not excused.
func (m *Tagflow) Scan(
	ctx context.Context,
	// The image to scan.
	container *dagger.Container,
	// Severities that fail the gate.
	// +default="HIGH,CRITICAL"
	severity string,
	// Findings without a fixed version do not fail.
	// +optional
	ignoreUnfixed bool,
	// The Trivy image (override for mirrors).
	// +default="aquasec/trivy:0.74.0"
	trivyImage string,
	// Pull Trivy's DB from this OCI repository (a mirror).
	// +optional
	dbRepository string,
) (*dagger.File, error) {
	report, res, err := m.scan(ctx, container, severity, ignoreUnfixed, trivyImage, dbRepository)
	if err != nil {
		return nil, err
	}
	if !res.Passed {
		return report, fmt.Errorf("scan gate failed: %d finding(s): %s", len(res.Failing), res.FailingList())
	}
	return report, nil
}

// scan runs Trivy in a container and decides the gate with tagflow's rules.
func (m *Tagflow) scan(ctx context.Context, container *dagger.Container, severity string, ignoreUnfixed bool, trivyImage, dbRepository string) (*dagger.File, *scan.Result, error) {
	args := []string{"trivy", "image", "--input", "/image.tar", "--format", "json", "--quiet", "--scanners", "vuln", "--skip-version-check", "--output", "/report.json"}
	if dbRepository != "" {
		args = append(args, "--db-repository", dbRepository)
	}
	report := dag.Container().From(trivyImage).
		WithMountedFile("/image.tar", container.AsTarball()).
		WithExec(args, dagger.ContainerWithExecOpts{UseEntrypoint: false}).
		File("/report.json")
	data, err := report.Contents(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("scanning: %w", err)
	}
	res, err := scan.Evaluate([]byte(data), scan.Options{Gate: strings.Split(severity, ","), IgnoreUnfixed: ignoreUnfixed, Image: "container"})
	return report, res, err
}

// Tag returns the tag set a build of the source gets, one per line; it fails
// when the policy refuses it. The source must include its .git directory.
func (m *Tagflow) Tag(
	ctx context.Context,
	// The repository checkout, .git included.
	source *dagger.Directory,
	// Service name: the repository under the registry.
	service string,
	// Target environment.
	env string,
	// A release build: tag it vX.Y.Z.
	// +optional
	release bool,
	// Registry host[/namespace].
	// +optional
	registry string,
	// Sub-directory of the service in the checkout.
	// +default="."
	path string,
) (string, error) {
	p, err := m.plan(ctx, source, plan.Request{Service: service, Env: env, Release: release, Registry: registry}, path)
	if err != nil {
		return "", err
	}
	return strings.Join(p.Tags.Names(), "\n"), nil
}

// Push publishes the container once, under its SHA tag, and points every
// other tag at that digest by copying the manifest: one digest for all tags.
// When the SHA tag already exists its digest is reused, not published again.
// It returns the digest reference.
func (m *Tagflow) Push(
	ctx context.Context,
	// The image.
	container *dagger.Container,
	// The repository, registry/namespace/service.
	repository string,
	// Tags to write; one must be the 7-character SHA tag.
	tagNames []string,
	// Registry username.
	// +optional
	username string,
	// Registry password or token.
	// +optional
	password *dagger.Secret,
) (string, error) {
	repo, err := registry.ParseRepository(repository)
	if err != nil {
		return "", err
	}
	shaTag, rest, err := tags.SplitSHA(tagNames)
	if err != nil {
		return "", err
	}
	c, err := m.client(ctx, username, password)
	if err != nil {
		return "", err
	}
	digest, err := c.Resolve(ctx, repo.Tag(shaTag))
	if err != nil {
		// Not there yet: publish once. Publishing again later would give a new digest.
		if password != nil {
			container = container.WithRegistryAuth(repo.RegistryStr(), username, password)
		}
		ref, err := container.Publish(ctx, repo.Tag(shaTag).String())
		if err != nil {
			return "", fmt.Errorf("publishing %s:%s: %w", repo, shaTag, err)
		}
		_, digest, _ = strings.Cut(ref, "@")
	}
	src := repo.Digest(digest)
	if len(rest) > 0 {
		if _, err := c.Retag(ctx, src, rest...); err != nil {
			return "", err
		}
	}
	return src.String(), nil
}

// OpenGitOpsPR writes an image into an environment's overlay and opens or
// updates its pull request; it returns the PR URL (or the pushed branch).
func (m *Tagflow) OpenGitOpsPR(
	ctx context.Context,
	// Service name.
	service string,
	// Environment.
	env string,
	// The image by digest: repository[:tag]@sha256:….
	image string,
	// Tags the digest carries (the overlay gets the immutable one).
	tagNames []string,
	// GitOps repository URL.
	repo string,
	// Token for the repository and its pull requests.
	token *dagger.Secret,
	// github, gitea or none.
	// +default="github"
	provider string,
	// tagflow.yaml, for keys, paths and templates.
	// +optional
	config *dagger.File,
) (string, error) {
	cfg, err := m.config(ctx, config)
	if err != nil {
		return "", err
	}
	ref, err := registry.ParseDigestRef(image)
	if err != nil {
		return "", err
	}
	tag, err := gitops.PickTag(tagNames, cfg.GitOps.Tag)
	if err != nil {
		return "", err
	}
	tok, err := token.Plaintext(ctx)
	if err != nil {
		return "", err
	}
	t, err := gitops.NewTarget(cfg, env, repo, provider, tok, nil)
	if err != nil {
		return "", err
	}
	out, err := gitops.Open(ctx, t, gitops.Deployment{Service: service, Env: env, Tags: tagNames,
		Image: gitops.Image{Repository: ref.Context().String(), Tag: tag, Digest: ref.DigestStr()}})
	if err != nil {
		return "", err
	}
	if out.PR != nil {
		return out.PR.URL, nil
	}
	return out.Result.Branch, nil
}

// Promote moves the digest an environment runs into the next one by
// manifest copy and opens the next overlay's pull request. It returns the
// promoted digest.
func (m *Tagflow) Promote(
	ctx context.Context,
	// Service name.
	service string,
	// The environment whose digest to promote.
	from string,
	// The environment to promote into.
	to string,
	// The approved commit; default the one in the release record.
	// +optional
	sha string,
	// tagflow.yaml: registry, environments, GitOps.
	config *dagger.File,
	// Registry username.
	// +optional
	username string,
	// Registry password or token.
	// +optional
	password *dagger.Secret,
	// Token for the GitOps repository.
	// +optional
	gitopsToken *dagger.Secret,
) (string, error) {
	d, err := m.deps(ctx, config, username, password, gitopsToken)
	if err != nil {
		return "", err
	}
	p, err := promote.Promote(ctx, d, promote.Request{Service: service, From: from, To: to, SHA: sha})
	if err != nil {
		return "", err
	}
	return p.Digest, nil
}

// Rollback puts an environment back on its previous digest (or the given
// commit or digest). It returns the digest it runs now.
func (m *Tagflow) Rollback(
	ctx context.Context,
	// Service name.
	service string,
	// The environment to roll back.
	env string,
	// A commit SHA or sha256 digest; default the previous deployment.
	// +optional
	to string,
	// tagflow.yaml: registry, environments, GitOps.
	config *dagger.File,
	// Registry username.
	// +optional
	username string,
	// Registry password or token.
	// +optional
	password *dagger.Secret,
	// Token for the GitOps repository.
	// +optional
	gitopsToken *dagger.Secret,
) (string, error) {
	d, err := m.deps(ctx, config, username, password, gitopsToken)
	if err != nil {
		return "", err
	}
	rb, err := promote.RollBack(ctx, d, promote.RollbackRequest{Service: service, Env: env, To: to})
	if err != nil {
		return "", err
	}
	return rb.To, nil
}

// Release plans, builds the Dockerfile, scans it with Trivy in a container,
// and hands the image to tagflow's release: every tag pushed, the release
// record and SLSA provenance attached, the environment's pull request opened.
// It returns the build metadata.
func (m *Tagflow) Release(
	ctx context.Context,
	// The repository checkout, .git included.
	source *dagger.Directory,
	// Service name.
	service string,
	// Target environment.
	env string,
	// A release build: tag it vX.Y.Z.
	// +optional
	release bool,
	// tagflow.yaml: registry, environments, GitOps.
	config *dagger.File,
	// Sub-directory of the service in the checkout.
	// +default="."
	path string,
	// Path of the Dockerfile inside the service directory.
	// +default="Dockerfile"
	dockerfile string,
	// Registry username.
	// +optional
	username string,
	// Registry password or token.
	// +optional
	password *dagger.Secret,
	// Token for the GitOps repository.
	// +optional
	gitopsToken *dagger.Secret,
) (*dagger.File, error) {
	d, err := m.deps(ctx, config, username, password, gitopsToken)
	if err != nil {
		return nil, err
	}
	dir, err := m.export(ctx, source)
	if err != nil {
		return nil, err
	}
	req := plan.Request{Source: filepath.Join(dir, path), Service: service, Env: env, Release: release}
	p, err := plan.Make(ctx, d.Config, req)
	if err != nil {
		return nil, err
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	var lbls []string
	for k, v := range p.Labels {
		lbls = append(lbls, k+"="+v)
	}
	ctr, err := m.Build(source.Directory(path), dockerfile, "", nil, "", lbls)
	if err != nil {
		return nil, err
	}
	_, res, err := m.scan(ctx, ctr, strings.Join(d.Config.Scan.Severity, ","), d.Config.Scan.IgnoreUnfixed, "aquasec/trivy:0.74.0", d.Config.Scan.DBRepository)
	if err != nil {
		return nil, err
	}
	// The image goes to the pipeline as a tarball in the module's own
	// filesystem: pushed, recorded and attested like any prebuilt image.
	image := filepath.Join(dir, "tagflow-image.tar")
	if _, err := ctr.AsTarball().Export(ctx, image); err != nil {
		return nil, err
	}
	meta := filepath.Join(dir, "tagflow-metadata.json")
	if _, err := promote.Release(ctx, d, promote.ReleaseRequest{Plan: req, Image: image, Scanned: res, Metadata: meta}); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(meta)
	if err != nil {
		return nil, err
	}
	return dag.File("tagflow-metadata.json", string(data)), nil
}

// plan exports the checkout into the module's filesystem and plans on it.
func (m *Tagflow) plan(ctx context.Context, source *dagger.Directory, req plan.Request, path string) (*plan.Plan, error) {
	dir, err := m.export(ctx, source)
	if err != nil {
		return nil, err
	}
	req.Source = filepath.Join(dir, path)
	p, err := plan.Make(ctx, config.Default(), req)
	if err != nil {
		return nil, err
	}
	return p, p.Err()
}

// export copies a directory into the module's own filesystem.
func (m *Tagflow) export(ctx context.Context, source *dagger.Directory) (string, error) {
	dir, err := os.MkdirTemp("", "tagflow-source-")
	if err != nil {
		return "", err
	}
	if _, err := source.Export(ctx, dir); err != nil {
		return "", fmt.Errorf("exporting the source: %w", err)
	}
	return dir, nil
}

func (m *Tagflow) config(ctx context.Context, f *dagger.File) (*config.Config, error) {
	if f == nil {
		return config.Default(), nil
	}
	data, err := f.Contents(ctx)
	if err != nil {
		return nil, err
	}
	return config.Parse("tagflow.yaml", []byte(data))
}

func (m *Tagflow) client(ctx context.Context, username string, password *dagger.Secret) (*registry.Client, error) {
	if password == nil {
		return registry.New()
	}
	pass, err := password.Plaintext(ctx)
	if err != nil {
		return nil, err
	}
	return registry.New(registry.WithBasicAuth(username, pass))
}

func (m *Tagflow) deps(ctx context.Context, cfgFile *dagger.File, username string, password, gitopsToken *dagger.Secret) (promote.Deps, error) {
	cfg, err := m.config(ctx, cfgFile)
	if err != nil {
		return promote.Deps{}, err
	}
	c, err := m.client(ctx, username, password)
	if err != nil {
		return promote.Deps{}, err
	}
	token := ""
	if gitopsToken != nil {
		if token, err = gitopsToken.Plaintext(ctx); err != nil {
			return promote.Deps{}, err
		}
	}
	return promote.Deps{Config: cfg, Registry: c, GitOps: func(env string) (gitops.Target, error) {
		return gitops.NewTarget(cfg, env, "", "", token, nil)
	}}, nil
}
