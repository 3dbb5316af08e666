package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tagflow/tagflow/internal/trivytest"
)

func TestBuildAndScanCommands(t *testing.T) {
	trivy := trivytest.Binary(t)
	cache := t.TempDir()
	trivytest.WriteDB(t, cache, trivytest.GoText)
	cfg := filepath.Join(t.TempDir(), "tagflow.yaml")
	os.WriteFile(cfg, []byte("scan:\n  trivy: "+trivy+"\n"), 0o644)
	t.Chdir("../..")

	out := filepath.Join(t.TempDir(), "echo")
	code, stdout, errs := tagflow(t, "--config", cfg, "build", "--source", "examples/echo-server", "--service", "echo-server", "--output", out)
	if code != exitOK || !strings.HasPrefix(stdout, "sha256:") {
		t.Fatalf("build: exit %d\n%s%s", code, stdout, errs)
	}
	code, stdout, errs = tagflow(t, "--config", cfg, "scan", "--image", out, "--offline", "--cache-dir", cache)
	if code != exitOK || !strings.Contains(stdout, "0 finding(s); gate HIGH,CRITICAL passed") {
		t.Errorf("scan of echo-server: exit %d\n%s%s", code, stdout, errs)
	}

	vuln := filepath.Join(t.TempDir(), "vuln.tar")
	code, _, errs = tagflow(t, "--config", cfg, "build", "--source", "pipeline/scan/testdata/vulnerable", "--service", "fixture", "--output", vuln)
	if code != exitOK {
		t.Fatalf("build fixture: exit %d %s", code, errs)
	}
	sarif := filepath.Join(t.TempDir(), "scan.sarif")
	code, _, errs = tagflow(t, "--config", cfg, "scan", "--image", vuln, "--offline", "--cache-dir", cache, "--format", "sarif", "--output", sarif)
	if code != exitFailed || !strings.Contains(errs, "HIGH CVE-2022-32149 in golang.org/x/text v0.3.7 (fixed in 0.3.8)") {
		t.Errorf("scan of the vulnerable fixture: exit %d\n%s", code, errs)
	}
	var log map[string]any
	if data, err := os.ReadFile(sarif); err != nil || json.Unmarshal(data, &log) != nil || log["version"] != "2.1.0" {
		t.Errorf("SARIF output: %v", err)
	}
	// Trivy's own report, gated again without running Trivy.
	report := filepath.Join(t.TempDir(), "trivy.json")
	tagflow(t, "--config", cfg, "scan", "--image", vuln, "--offline", "--cache-dir", cache, "--format", "trivy", "--output", report)
	code, stdout, _ = tagflow(t, "--config", cfg, "scan", "--report", report, "--severity", "CRITICAL", "--format", "markdown")
	if code != exitOK || !strings.Contains(stdout, "### Vulnerability scan passed") || !strings.Contains(stdout, "| HIGH | 1 |") {
		t.Errorf("scan --report with gate CRITICAL: exit %d\n%s", code, stdout)
	}

	code, _, errs = tagflow(t, "--config", cfg, "build", "--source", "pipeline/labels", "--service", "labels", "--output", filepath.Join(t.TempDir(), "x"))
	if code != exitFailed || !strings.Contains(errs, "not a main package") {
		t.Errorf("build of a library: exit %d %s", code, errs)
	}
	code, _, errs = tagflow(t, "--config", cfg, "scan", "--image", out, "--format", "yaml", "--offline", "--cache-dir", cache)
	if code != exitUsage {
		t.Errorf("scan --format yaml: exit %d %s", code, errs)
	}
}
