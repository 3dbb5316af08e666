package promote

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tagflow/tagflow/pipeline/build"
	"github.com/tagflow/tagflow/pipeline/gitops"
	"github.com/tagflow/tagflow/pipeline/labels"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/provenance"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/scan"
)

// ReleaseRequest is one release: plan, build or take an image, scan, push,
// record, deploy to the plan's environment.
type ReleaseRequest struct {
	Plan      plan.Request
	Image     string     // a prebuilt image (OCI layout or docker-archive); empty: build the Go service
	Base      build.Base // base image for the build
	Platforms []string   // default the config's
	Scan      *scan.Options
	Scanned   *scan.Result // a scan already made elsewhere (Trivy in a container); used instead of Scan
	NoScan    string       // why there is no scan (Trivy missing); the record says so
	Metadata  string       // where to write the build-metadata file; empty: none
	BuildID   string
	// SigningKey signs the provenance; nil attaches it unsigned.
	SigningKey crypto.Signer
	BuilderID  string // who builds (a CI run URL); default tagflow's
}

// Step is one step of a release and how it went.
type Step struct {
	Name   string `json:"name"`
	Status string `json:"status"` // ok, skipped, failed
	Detail string `json:"detail,omitempty"`
}

// Released is what a release did.
type Released struct {
	Plan     *plan.Plan       `json:"plan"`
	Pushed   *registry.Pushed `json:"pushed,omitempty"`
	Scan     *scan.Result     `json:"scan,omitempty"`
	Record   *Metadata        `json:"metadata,omitempty"`
	GitOps   *gitops.Outcome  `json:"gitops,omitempty"`
	Steps    []Step           `json:"steps"`
	Metadata string           `json:"metadata_file,omitempty"`
}

// StepError names the step a release stopped at.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("release stopped at %s: %v", e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Release runs a release. It stops at the first failing step and says
// which; nothing is pushed when the policy or the scan refuses.
func Release(ctx context.Context, d Deps, r ReleaseRequest) (*Released, error) {
	started := time.Now()
	out := &Released{}
	step := func(name, status, detail string) { out.Steps = append(out.Steps, Step{name, status, detail}) }
	fail := func(name string, err error) (*Released, error) {
		step(name, "failed", err.Error())
		return out, &StepError{Step: name, Err: err}
	}

	p, err := plan.Make(ctx, d.Config, r.Plan)
	if err != nil {
		return fail("plan", err)
	}
	out.Plan = p
	if !p.Allowed() {
		return fail("policy", p.Err())
	}
	step("plan", "ok", fmt.Sprintf("%d tags for %s", len(p.Tags), p.Repository))

	art, layout, cleanup, err := d.artifact(ctx, r, p)
	if cleanup != nil {
		defer cleanup()
	}
	if err != nil {
		return fail("build", err)
	}
	digest, _ := art.Digest()
	step("build", "ok", digest.String())

	rec := &Metadata{BuildID: r.BuildID, Service: p.Service, Env: p.Env, Commit: p.Source.Commit, Version: p.Version,
		Repository: p.Repository, Created: time.Now().UTC()}
	if r.Scan == nil && r.Scanned == nil {
		rec.Scan = Scan{Skipped: r.NoScan}
		step("scan", "skipped", r.NoScan)
	} else {
		res := r.Scanned
		if res == nil {
			o := *r.Scan
			o.Image = layout
			if res, err = scan.Run(ctx, o); err != nil {
				return fail("scan", err)
			}
		}
		out.Scan = res
		rec.Scan = Scan{Passed: res.Passed, Gate: res.Gate, Counts: res.Counts, Summary: res.Markdown()}
		for _, f := range res.Failing {
			rec.Scan.Failing = append(rec.Scan.Failing, f.ID)
		}
		if !res.Passed {
			return fail("scan", fmt.Errorf("%d finding(s) fail the gate; nothing was pushed", len(res.Failing)))
		}
		step("scan", "ok", fmt.Sprintf("%d finding(s), none fail the gate", len(res.Findings)))
	}

	repo, err := registry.ParseRepository(p.Repository)
	if err != nil {
		return fail("push", err)
	}
	if out.Pushed, err = d.Registry.Push(ctx, art, repo, p.Tags); err != nil {
		return fail("push", err)
	}
	rec.Digest, rec.Tags, rec.References, rec.Platforms = out.Pushed.Digest, out.Pushed.Tags, out.Pushed.References, out.Pushed.Platforms
	step("push", "ok", out.Pushed.DigestRef())

	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fail("record", err)
	}
	if _, err := d.Registry.Attach(ctx, repo.Digest(out.Pushed.Digest), RecordType, data, nil); err != nil {
		return fail("record", err)
	}
	out.Record = rec
	step("record", "ok", "release record attached to "+out.Pushed.Digest)

	builder := r.BuilderID
	if builder == "" {
		builder = "https://github.com/tagflow/tagflow/cmd/tagflow"
	}
	st, err := provenance.New(provenance.Build{Repository: repo.String(), Digest: out.Pushed.Digest, Commit: p.Source.Commit,
		SourceURL: p.Labels[labels.Source], BuilderID: builder, BuildID: r.BuildID, Started: started, Finished: time.Now(),
		Parameters: map[string]any{"service": p.Service, "env": p.Env, "release": p.Release, "version": p.Version, "tags": out.Pushed.Tags, "scanPassed": rec.Scan.Passed}})
	if err != nil {
		return fail("provenance", err)
	}
	if _, err := provenance.Attach(ctx, d.Registry, repo.Digest(out.Pushed.Digest), st, r.SigningKey); err != nil {
		return fail("provenance", err)
	}
	signed := "unsigned"
	if r.SigningKey != nil {
		signed = "signed"
	}
	step("provenance", "ok", "SLSA v1, "+signed)

	if d.Config.GitOps.Repo == "" || d.GitOps == nil {
		step("gitops", "skipped", "no gitops.repo configured")
	} else {
		tag, err := gitops.PickTag(rec.Tags, d.Config.GitOps.Tag)
		if err != nil {
			return fail("gitops", err)
		}
		o, err := d.deploy(ctx, p.Env, gitops.Deployment{Service: p.Service, Env: p.Env, Tags: rec.Tags, Commit: rec.Commit,
			SourceURL: p.Labels[labels.Source], Image: gitops.Image{Repository: repo.String(), Tag: tag, Digest: rec.Digest},
			Scan: rec.Scan.Summary, Verify: d.Config.GitOps.Verify, BuildID: rec.BuildID}, "")
		out.GitOps = o
		if err != nil {
			return fail("gitops", err)
		}
		if o.PR != nil {
			rec.PullRequest = o.PR.URL
		}
		step("gitops", "ok", o.String())
	}

	if r.Metadata != "" {
		data, _ := json.MarshalIndent(rec, "", "  ")
		if err := os.MkdirAll(filepath.Dir(r.Metadata), 0o755); err != nil {
			return fail("metadata", err)
		}
		if err := os.WriteFile(r.Metadata, append(data, '\n'), 0o644); err != nil {
			return fail("metadata", err)
		}
		out.Metadata = r.Metadata
		step("metadata", "ok", r.Metadata)
	}
	return out, nil
}

// artifact returns the image to release and an OCI layout of it for the scanner.
func (d Deps) artifact(ctx context.Context, r ReleaseRequest, p *plan.Plan) (registry.Artifact, string, func(), error) {
	if r.Image != "" {
		a, err := registry.Load(r.Image)
		if err != nil {
			return a, "", nil, err
		}
		if a.Image != nil {
			cf, err := a.Image.ConfigFile()
			if err != nil {
				return a, "", nil, err
			}
			if err := p.CheckImage(cf.Config.Labels); err != nil {
				return a, "", nil, err
			}
		}
		return a, r.Image, nil, nil
	}
	platforms := r.Platforms
	if len(platforms) == 0 {
		platforms = d.Config.Platforms
	}
	a, err := build.Build(ctx, build.FromPlan(p, platforms, r.Base))
	if err != nil {
		return a, "", nil, err
	}
	dir, err := os.MkdirTemp("", "tagflow-release-")
	if err != nil {
		return a, "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	layout := filepath.Join(dir, "oci")
	if err := build.Write(layout, a); err != nil {
		return a, "", cleanup, err
	}
	// Push what the scanner saw: the layout, read back.
	a, err = registry.Load(layout)
	return a, layout, cleanup, err
}
