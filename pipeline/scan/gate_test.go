package scan_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tagflow/tagflow/pipeline/scan"
)

// report makes a Trivy JSON report (schema 2) with the given findings.
func report(t *testing.T, vulns ...map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"SchemaVersion": 2, "ArtifactName": "img",
		"Results": []any{map[string]any{"Target": "app/svc", "Class": "lang-pkgs", "Type": "gobinary", "Vulnerabilities": vulns}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func vuln(id, sev, fixed string) map[string]any {
	return map[string]any{"VulnerabilityID": id, "PkgName": "example.com/m", "InstalledVersion": "v1.0.0", "FixedVersion": fixed,
		"Severity": sev, "Title": id + " title", "PrimaryURL": "https://avd.aquasec.com/nvd/" + strings.ToLower(id)}
}

var day = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func TestEvaluateGate(t *testing.T) {
	rep := report(t, vuln("CVE-1", "CRITICAL", "1.0.1"), vuln("CVE-2", "HIGH", ""), vuln("CVE-3", "MEDIUM", "1.2"), vuln("CVE-4", "LOW", ""))
	ignore := filepath.Join(t.TempDir(), ".trivyignore")
	os.WriteFile(ignore, []byte("# accepted risks\nCVE-1 exp:2027-01-01\nCVE-2 exp:2026-01-01 # expired: no longer applies\n"), 0o644)
	for _, tc := range []struct {
		name    string
		o       scan.Options
		failing []string
		passed  bool
	}{
		{"default gate HIGH,CRITICAL", scan.Options{}, []string{"CVE-1", "CVE-2"}, false},
		{"gate CRITICAL", scan.Options{Gate: []string{"critical"}}, []string{"CVE-1"}, false},
		{"gate MEDIUM and up", scan.Options{Gate: []string{"MEDIUM", "HIGH", "CRITICAL"}}, []string{"CVE-1", "CVE-2", "CVE-3"}, false},
		{"ignore unfixed", scan.Options{IgnoreUnfixed: true}, []string{"CVE-1"}, false},
		{".trivyignore with expiry", scan.Options{IgnoreFile: ignore}, []string{"CVE-2"}, false},
		{"allow-list", scan.Options{IgnoreUnfixed: true, Allow: []scan.Allow{{ID: "CVE-1", Until: day.AddDate(0, 1, 0), Reason: "patched upstream, bump pending"}}}, nil, true},
		{"expired allow-list entry fails loudly", scan.Options{IgnoreUnfixed: true, Allow: []scan.Allow{{ID: "CVE-1", Until: day.AddDate(0, 0, -1), Reason: "was temporary"}}}, []string{"CVE-1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Now, tc.o.Image = day, "img"
			res, err := scan.Evaluate(rep, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, f := range res.Failing {
				ids = append(ids, f.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.failing, ",") || res.Passed != tc.passed {
				t.Errorf("failing %v passed %v; want %v %v", ids, res.Passed, tc.failing, tc.passed)
			}
			if res.Counts["CRITICAL"] != 1 || res.Counts["HIGH"] != 1 || res.Counts["MEDIUM"] != 1 || res.Counts["LOW"] != 1 {
				t.Errorf("counts = %v: every finding counts, excused or not", res.Counts)
			}
		})
	}
	res, _ := scan.Evaluate(rep, scan.Options{Now: day, IgnoreUnfixed: true, Allow: []scan.Allow{{ID: "CVE-1", Until: day.AddDate(0, 0, -1), Reason: "was temporary"}}})
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "CVE-1 expired on 2026-11-29 (was temporary)") {
		t.Errorf("warnings = %v", res.Warnings)
	}
	if md := res.Markdown(); !strings.Contains(md, "> **Warning:** allow-list entry CVE-1 expired") {
		t.Errorf("the expired entry is not loud in the summary:\n%s", md)
	}
}

func TestEvaluateErrors(t *testing.T) {
	if _, err := scan.Evaluate([]byte(`{"SchemaVersion":1}`), scan.Options{}); err == nil || !strings.Contains(err.Error(), "schema version 1") {
		t.Errorf("old schema = %v", err)
	}
	if _, err := scan.Evaluate([]byte(`not json`), scan.Options{}); err == nil {
		t.Error("garbage accepted")
	}
	if _, err := scan.Evaluate(report(t), scan.Options{Gate: []string{"SEVERE"}}); err == nil || !strings.Contains(err.Error(), `"SEVERE"`) {
		t.Errorf("bad severity = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "ignore")
	os.WriteFile(bad, []byte("CVE-1 exp:tomorrow\n"), 0o644)
	if _, err := scan.Evaluate(report(t), scan.Options{IgnoreFile: bad}); err == nil || !strings.Contains(err.Error(), bad+":1") {
		t.Errorf("bad ignore file = %v", err)
	}
}
