package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/tagflow/tagflow/pipeline/build"
	"github.com/tagflow/tagflow/pipeline/plan"
	"github.com/tagflow/tagflow/pipeline/scan"
)

func (a *app) buildCommand() *cobra.Command {
	var req plan.Request
	var rf registryFlags
	var output, base, dockerfile string
	var platforms []string
	cmd := &cobra.Command{
		Use:   "build --source DIR --service NAME --output PATH [--platform os/arch…] [--base REF|LAYOUT] [--release]",
		Short: "Build a Go service into an OCI image without a container engine",
		Long: `build runs go build (CGO off, -trimpath, version and commit stamped through
-ldflags -X main.version/main.commit) for each platform and puts the binary at
/app/<service> in one layer on the base (an image reference, an OCI layout
directory, or none), running as the non-root user 65532 with the plan's labels.
The same commit gives the same digest. Several platforms give an OCI index.

--output is an OCI layout directory, or a docker-archive when it ends in .tar.
Dockerfile builds need a container engine: use the Dagger module for them.`,
		Example: `  tagflow build --source examples/echo-server --service echo-server --output build/echo
  tagflow build --source . --service api --platform linux/amd64,linux/arm64 --output build/api`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dockerfile != "" {
				return usagef("--dockerfile %s: Dockerfile builds need a container engine, and this command runs without one: use the Dagger module (dagger call build --context . --dockerfile %s)", dockerfile, dockerfile)
			}
			cfg, err := a.config()
			if err != nil {
				return err
			}
			p, err := a.allowedPlan(cmd.Context(), cfg, req)
			if err != nil {
				return err
			}
			if len(platforms) == 0 {
				platforms = cfg.Platforms
			}
			baseImg, err := a.baseImage(&rf, base)
			if err != nil {
				return err
			}
			art, err := build.Build(cmd.Context(), build.FromPlan(p, platforms, baseImg))
			if err != nil {
				return err
			}
			if err := build.Write(output, art); err != nil {
				return err
			}
			d, _ := art.Digest()
			fmt.Fprintf(a.stdout, "%s\n", d)
			fmt.Fprintf(a.stderr, "built %s for %s into %s\n", req.Service, strings.Join(platforms, ", "), output)
			return nil
		},
	}
	f := cmd.Flags()
	addPlanFlags(f, &req, false)
	f.StringVar(&output, "output", "", "OCI layout directory, or a .tar docker-archive (required)")
	f.StringSliceVar(&platforms, "platform", nil, "os/arch[/variant]; repeat or comma-separate (default: config platforms)")
	f.StringVar(&base, "base", "", "base image: a registry reference or an OCI layout directory (default: none)")
	f.StringVar(&dockerfile, "dockerfile", "", "a Dockerfile to build (needs the Dagger module)")
	rf.add(f)
	required(cmd, "service", "output")
	return cmd
}

// baseImage resolves --base: nothing, an OCI layout directory, or a reference.
func (a *app) baseImage(rf *registryFlags, base string) (build.Base, error) {
	switch {
	case base == "":
		return nil, nil
	case fileExists(filepath.Join(base, "index.json")):
		return build.LayoutBase(base), nil
	}
	ref, err := name.ParseReference(base, name.StrictValidation)
	if err != nil {
		return nil, usagef("--base %q: neither an OCI layout directory nor an image reference: %w", base, err)
	}
	c, err := rf.client(a)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, p v1.Platform) (v1.Image, error) { return c.Image(ctx, ref, p) }, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (a *app) scanCommand() *cobra.Command {
	var image, format, output, reportFile, cacheDir, dbRepo, ignoreFile string
	var severity []string
	var ignoreUnfixed, offline bool
	cmd := &cobra.Command{
		Use:   "scan --image PATH|REF [--severity HIGH,CRITICAL] [--ignore-unfixed] [--format table|json|sarif|markdown]",
		Short: "Scan an image with Trivy and gate on severity",
		Long: `scan runs Trivy on an OCI layout, a docker-archive or a registry reference (or reads
a report Trivy wrote earlier, with --report) and decides the gate: findings of
the --severity levels fail it, unless fixed versions are missing and
--ignore-unfixed is set, the ID is in the .trivyignore, or an unexpired
scan.allow entry in tagflow.yaml excuses it. An expired entry excuses nothing and
says so. Exit status 1 when the gate fails, with the failing findings printed.

--format: table (default), json (tagflow's decision), sarif (GitHub code
scanning), markdown (a job summary), trivy (Trivy's own JSON).`,
		Example: `  tagflow scan --image build/echo --format sarif --output scan.sarif
  tagflow scan --image build/echo --offline --cache-dir .cache/trivy`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.config()
			if err != nil {
				return err
			}
			o, err := scan.OptionsFrom(cfg)
			if err != nil {
				return err
			}
			o.Image = image
			flags := cmd.Flags()
			if flags.Changed("severity") {
				o.Gate = severity
			}
			if flags.Changed("ignore-unfixed") {
				o.IgnoreUnfixed = ignoreUnfixed
			}
			if cacheDir != "" {
				o.CacheDir = cacheDir
			}
			if dbRepo != "" {
				o.DBRepository = dbRepo
			}
			if ignoreFile != "" {
				o.IgnoreFile = ignoreFile
			}
			o.Offline = offline
			var res *scan.Result
			if reportFile != "" {
				data, err := os.ReadFile(reportFile)
				if err != nil {
					return usagef("reading --report: %w", err)
				}
				if o.Image == "" {
					o.Image = reportFile
				}
				res, err = scan.Evaluate(data, o)
				if err != nil {
					return err
				}
			} else {
				if image == "" {
					return usagef("give --image (or --report with a Trivy JSON report)")
				}
				if res, err = scan.Run(cmd.Context(), o); err != nil {
					return err
				}
			}
			if err := a.writeScan(res, format, output); err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stderr, "warning: %s\n", w)
			}
			if !res.Passed {
				fmt.Fprintf(a.stderr, "scan: %d finding(s) fail the gate (%s):\n", len(res.Failing), strings.Join(res.Gate, ","))
				for _, f := range res.Failing {
					fmt.Fprintf(a.stderr, "  %s %s in %s %s (fixed in %s) %s\n", f.Severity, f.ID, f.Package, f.Installed, orNone(f.Fixed), f.URL)
				}
				return errReported
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&image, "image", "", "OCI layout directory, docker-archive tarball, or registry reference")
	f.StringVar(&reportFile, "report", "", "gate an existing Trivy JSON report instead of running Trivy")
	f.StringSliceVar(&severity, "severity", nil, "severities that fail the gate (default scan.severity: HIGH,CRITICAL)")
	f.BoolVar(&ignoreUnfixed, "ignore-unfixed", false, "findings without a fixed version do not fail")
	f.StringVar(&ignoreFile, "ignorefile", "", "a .trivyignore file")
	f.StringVar(&format, "format", "table", "table, json, sarif, markdown or trivy")
	f.StringVar(&output, "output", "", "write the report here instead of stdout")
	f.StringVar(&cacheDir, "cache-dir", "", "Trivy's cache directory (holds the DB)")
	f.StringVar(&dbRepo, "db-repository", "", "pull Trivy's DB from this OCI repository (a mirror)")
	f.BoolVar(&offline, "offline", false, "use the DB in the cache as it is; never download")
	return cmd
}

func (a *app) writeScan(res *scan.Result, format, output string) error {
	var data []byte
	switch format {
	case "table":
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "SEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED\tIN\tSTATUS\n")
		for _, f := range res.Findings {
			status := "FAILS"
			if f.Excused != "" {
				status = f.Excused
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Severity, f.ID, f.Package, f.Installed, orNone(f.Fixed), f.Target, status)
		}
		tw.Flush()
		verdict := "passed"
		if !res.Passed {
			verdict = "failed"
		}
		fmt.Fprintf(&b, "%d finding(s); gate %s %s\n", len(res.Findings), strings.Join(res.Gate, ","), verdict)
		data = []byte(b.String())
	case "json":
		var b strings.Builder
		if err := jsonTo(&b, res); err != nil {
			return err
		}
		data = []byte(b.String())
	case "sarif":
		var err error
		if data, err = res.SARIF(); err != nil {
			return err
		}
	case "markdown":
		data = []byte(res.Markdown())
	case "trivy":
		data = res.Report
	default:
		return usagef("--format %q: want table, json, sarif, markdown or trivy", format)
	}
	if output == "" {
		_, err := a.stdout.Write(data)
		return err
	}
	return os.WriteFile(output, data, 0o644)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
