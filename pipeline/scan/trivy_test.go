package scan_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/internal/trivytest"
	"github.com/tagflow/tagflow/pipeline/build"
	"github.com/tagflow/tagflow/pipeline/registry"
	"github.com/tagflow/tagflow/pipeline/scan"
)

var ctx = context.Background()

var (
	fixtureOnce sync.Once
	fixtures    map[string]string // name → OCI layout
	fixtureErr  error
)

// fixture builds a testdata program with tagflow's own builder, once per run.
// "debian" is the vulnerable program on a Debian 12 base with an old libssl3.
func fixture(t *testing.T, which string) string {
	t.Helper()
	fixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tagflow-scan-fixtures-")
		if err != nil {
			fixtureErr = err
			return
		}
		fixtures = map[string]string{}
		base := debianBase(t, dir)
		for name, o := range map[string]build.Options{
			"vulnerable": {Source: "testdata/vulnerable", Name: "fixture"},
			"fixed":      {Source: "testdata/fixed", Name: "fixture"},
			"debian":     {Source: "testdata/vulnerable", Name: "fixture", Base: build.LayoutBase(base)},
		} {
			o.Created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			a, err := build.Build(ctx, o)
			if err != nil {
				fixtureErr = err
				return
			}
			fixtures[name] = filepath.Join(dir, name)
			if fixtureErr = build.Write(fixtures[name], a); fixtureErr != nil {
				return
			}
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtures[which]
}

// debianBase writes a base image whose files say Debian 12 with libssl3 from
// openssl 3.0.11-1~deb12u2 installed: what Trivy's OS analyzers read.
func debianBase(t *testing.T, dir string) string {
	files := map[string]string{
		"etc/os-release":     "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nID=debian\n",
		"etc/debian_version": "12.2\n",
		"var/lib/dpkg/status": "Package: libssl3\nStatus: install ok installed\nPriority: optional\nSection: libs\nInstalled-Size: 6000\n" +
			"Maintainer: Debian OpenSSL Team <pkg-openssl-devel@alioth-lists.debian.net>\nArchitecture: amd64\nMulti-Arch: same\n" +
			"Source: openssl\nVersion: 3.0.11-1~deb12u2\nDescription: Secure Sockets Layer toolkit - shared libraries\n\n",
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"etc/", "var/", "var/lib/", "var/lib/dpkg/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	for _, n := range []string{"etc/debian_version", "etc/os-release", "var/lib/dpkg/status"} {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "debian-base")
	if err := build.Write(path, registry.Artifact{Image: img}); err != nil {
		t.Fatal(err)
	}
	return path
}

func cacheWith(t *testing.T, advisories ...trivytest.Advisory) string {
	t.Helper()
	dir := t.TempDir()
	trivytest.WriteDB(t, dir, advisories...)
	return dir
}

func TestScanGoModule(t *testing.T) {
	trivy := trivytest.Binary(t)
	cache := cacheWith(t, trivytest.GoText, trivytest.DebianOpenSSL)
	res, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: fixture(t, "vulnerable"), CacheDir: cache, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || len(res.Failing) != 1 {
		t.Fatalf("vulnerable fixture: passed=%v failing=%+v", res.Passed, res.Failing)
	}
	f := res.Failing[0]
	if f.ID != "CVE-2022-32149" || f.Severity != "HIGH" || f.Package != "golang.org/x/text" || f.Installed != "v0.3.7" || f.Fixed != "0.3.8" || f.Type != "gobinary" {
		t.Errorf("finding = %+v", f)
	}
	var report map[string]any
	if err := json.Unmarshal(res.Report, &report); err != nil || report["SchemaVersion"] != float64(2) {
		t.Errorf("Trivy's own report is not kept: %v", err)
	}

	fixed, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: fixture(t, "fixed"), CacheDir: cache, Offline: true})
	if err != nil || !fixed.Passed || len(fixed.Findings) != 0 {
		t.Errorf("fixed fixture: %v, findings %+v", err, fixed.Findings)
	}
	// The gate decides: CRITICAL only lets the HIGH finding through.
	crit, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: fixture(t, "vulnerable"), CacheDir: cache, Offline: true, Gate: []string{"CRITICAL"}})
	if err != nil || !crit.Passed || crit.Counts["HIGH"] != 1 {
		t.Errorf("gate CRITICAL: %v, failing %+v", err, crit.Failing)
	}
}

func TestScanDebianPackages(t *testing.T) {
	trivy := trivytest.Binary(t)
	cache := cacheWith(t, trivytest.GoText, trivytest.DebianOpenSSL)
	res, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: fixture(t, "debian"), CacheDir: cache, Offline: true, Gate: []string{"MEDIUM", "HIGH", "CRITICAL"}})
	if err != nil {
		t.Fatal(err)
	}
	var deb *scan.Finding
	for i, f := range res.Findings {
		if f.ID == "CVE-2024-0727" {
			deb = &res.Findings[i]
		}
	}
	if deb == nil || deb.Package != "libssl3" || deb.Installed != "3.0.11-1~deb12u2" || deb.Fixed != "3.0.13-1~deb12u1" || deb.Severity != "MEDIUM" || deb.Type != "debian" {
		t.Fatalf("debian finding = %+v in %+v", deb, res.Findings)
	}
	if res.Passed || len(res.Failing) != 2 {
		t.Errorf("gate MEDIUM+ should fail on both findings: %+v", res.Failing)
	}
}

func TestScanIgnoreUnfixedAndIgnoreFile(t *testing.T) {
	trivy := trivytest.Binary(t)
	unfixed := trivytest.GoText
	unfixed.Patched, unfixed.Vulnerable = nil, []string{">= 0"} // Trivy reads a fix from a range's upper bound
	cache := cacheWith(t, unfixed)
	o := scan.Options{Trivy: trivy, Image: fixture(t, "vulnerable"), CacheDir: cache, Offline: true}
	res, err := scan.Run(ctx, o)
	if err != nil || res.Passed || res.Failing[0].Fixed != "" {
		t.Fatalf("unfixed advisory without --ignore-unfixed: %v, %+v", err, res.Failing)
	}
	o.IgnoreUnfixed = true
	if res, err = scan.Run(ctx, o); err != nil || !res.Passed {
		t.Errorf("--ignore-unfixed: %v, failing %+v", err, res.Failing)
	}
	o.IgnoreUnfixed = false
	o.IgnoreFile = filepath.Join(t.TempDir(), ".trivyignore")
	os.WriteFile(o.IgnoreFile, []byte("CVE-2022-32149\n"), 0o644)
	if res, err = scan.Run(ctx, o); err != nil || !res.Passed || !strings.Contains(res.Findings[0].Excused, ".trivyignore") {
		t.Errorf(".trivyignore: %v, findings %+v", err, res.Findings)
	}
}

func TestScanOutputs(t *testing.T) {
	trivy := trivytest.Binary(t)
	res, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: fixture(t, "vulnerable"), CacheDir: cacheWith(t, trivytest.GoText), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	md := res.Markdown()
	for _, want := range []string{"### Vulnerability scan failed", "| HIGH | 1 |", "| CRITICAL | 0 |", "**1 finding(s) fail the gate:**",
		"| [CVE-2022-32149](https://avd.aquasec.com/nvd/cve-2022-32149) | HIGH | `golang.org/x/text` | v0.3.7 | 0.3.8 | `app/fixture` |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	sarif, err := res.SARIF()
	if err != nil {
		t.Fatal(err)
	}
	validateSARIF(t, sarif)
	var log struct {
		Runs []struct {
			Results []struct {
				RuleID, Level string
			}
		}
	}
	json.Unmarshal(sarif, &log)
	if len(log.Runs) != 1 || len(log.Runs[0].Results) != 1 || log.Runs[0].Results[0].RuleID != "CVE-2022-32149" || log.Runs[0].Results[0].Level != "error" {
		t.Errorf("SARIF results = %+v", log.Runs)
	}
}

// validateSARIF checks a log against the official SARIF 2.1.0 JSON schema.
func validateSARIF(t *testing.T, data []byte) {
	t.Helper()
	schemaPath := os.Getenv("TAGFLOW_SARIF_SCHEMA")
	if schemaPath == "" {
		home, _ := os.UserHomeDir()
		schemaPath = filepath.Join(home, ".cache/tagflow-tools/sarif-2.1.0/sarif-2.1.0-rtm.5.json")
	}
	if _, err := os.Stat(schemaPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("SARIF schema missing at %s: scripts/tools.sh fetches it", schemaPath)
		}
		t.Skipf("SARIF schema missing at %s", schemaPath)
	}
	c := jsonschema.NewCompiler()
	sch, err := c.Compile(schemaPath)
	if err != nil {
		t.Fatalf("compiling the SARIF schema: %v", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(doc); err != nil {
		t.Errorf("SARIF does not validate against 2.1.0: %v", err)
	}
}

func TestScanErrors(t *testing.T) {
	trivy := trivytest.Binary(t)
	start := time.Now()
	_, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: fixture(t, "fixed"), CacheDir: t.TempDir(), Offline: true})
	if !errors.Is(err, scan.ErrNoDB) || time.Since(start) > time.Minute {
		t.Errorf("missing DB = %v after %s; want ErrNoDB, fast", err, time.Since(start))
	}
	bad := filepath.Join(t.TempDir(), "broken.tar")
	os.WriteFile(bad, []byte("not an image at all"), 0o644)
	_, err = scan.Run(ctx, scan.Options{Trivy: trivy, Image: bad, CacheDir: cacheWith(t, trivytest.GoText), Offline: true})
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("corrupt input = %v", err)
	}
	if _, err := scan.Run(ctx, scan.Options{Trivy: filepath.Join(t.TempDir(), "no-trivy"), Image: bad}); !errors.Is(err, scan.ErrNoTrivy) {
		t.Errorf("no trivy = %v", err)
	}
}

// TestScanDBRepository serves the DB as an OCI artifact from a loopback
// registry, the way a mirror would, and lets Trivy pull it.
func TestScanDBRepository(t *testing.T) {
	trivy := trivytest.Binary(t)
	src := cacheWith(t, trivytest.GoText)
	reg := registrytest.Start(t, registrytest.V3, registrytest.Options{})
	ref, _ := name.ParseReference(reg.Host + "/mirror/trivy-db:2")
	if err := remote.Write(ref, trivytest.DBArtifact(t, src)); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	res, err := scan.Run(ctx, scan.Options{Trivy: trivy, Image: fixture(t, "vulnerable"), CacheDir: cache,
		DBRepository: reg.Host + "/mirror/trivy-db", Env: []string{"TRIVY_INSECURE=true"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || res.Failing[0].ID != "CVE-2022-32149" {
		t.Errorf("scan with the mirrored DB = %+v", res.Failing)
	}
	if _, err := os.Stat(filepath.Join(cache, "db", "trivy.db")); err != nil {
		t.Errorf("the DB was not pulled into the cache: %v", err)
	}
}
