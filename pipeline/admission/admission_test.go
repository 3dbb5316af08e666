package admission_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tagflow/tagflow/internal/admissiontest"
	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/admission"
	"github.com/tagflow/tagflow/pipeline/config"
)

func TestAdmits(t *testing.T) {
	r := admissiontest.Rules(t)
	for _, c := range admissiontest.Cases {
		if got := r.Admits(c.Image, c.NS); got != c.Want {
			t.Errorf("Admits(%s in %s) = %v, want %v", c.Image, c.NS, got, c.Want)
		}
	}
}

// TestKyverno checks the ClusterPolicy's structure and evaluates its
// regex_match condition (Go's regexp, as Kyverno's is) against the cases.
func TestKyverno(t *testing.T) {
	r := admissiontest.Rules(t)
	out, err := r.Kyverno()
	if err != nil {
		t.Fatal(err)
	}
	ds := admissiontest.Docs(t, out)
	if len(ds) != 1 || ds[0]["kind"] != "ClusterPolicy" || ds[0]["apiVersion"] != "kyverno.io/v1" {
		t.Fatalf("kyverno export: %v", ds)
	}
	allowed := admissiontest.Dig(ds[0], "spec", "rules", 0)
	if admissiontest.Dig(allowed, "validate", "failureAction") != "Enforce" {
		t.Error("the policy does not enforce")
	}
	foreach := admissiontest.Dig(allowed, "validate", "foreach").([]any)
	var lists []string
	for _, f := range foreach {
		lists = append(lists, admissiontest.Dig(f, "list").(string))
		key := admissiontest.Dig(f, "deny", "conditions", "any", 0, "key").(string)
		m := regexp.MustCompile(`regex_match\('(.*)', element\.image\)`).FindStringSubmatch(key)
		if m == nil {
			t.Fatalf("condition %q has no regex_match", key)
		}
		re := regexp.MustCompile(strings.ReplaceAll(m[1], `\'`, `'`))
		for _, c := range admissiontest.Cases {
			if c.NS == "prod" {
				continue // the digest rule below
			}
			if got := re.MatchString(c.Image); got != c.Want {
				t.Errorf("kyverno condition on %s: match %v, want %v", c.Image, got, c.Want)
			}
		}
	}
	if strings.Join(lists, ",") != "request.object.spec.containers,request.object.spec.initContainers || `[]`,request.object.spec.ephemeralContainers || `[]`" {
		t.Errorf("foreach lists = %v", lists)
	}
	pinned := admissiontest.Dig(ds[0], "spec", "rules", 1)
	if admissiontest.Dig(pinned, "match", "any", 0, "resources", "namespaces", 0) != "prod" || admissiontest.Dig(pinned, "validate", "foreach", 0, "deny", "conditions", "any", 0, "value") != "*@sha256:*" {
		t.Errorf("digest rule = %v", pinned)
	}
}

func TestNoAllowList(t *testing.T) {
	cfg := config.Default()
	cfg.Registries.Allowed = nil
	if _, err := admission.From(cfg, nil); err == nil {
		t.Error("an empty allow-list exported a policy")
	}
}

// TestKyvernoCLI applies the exported ClusterPolicy with Kyverno's own CLI to
// a pod per case and kind of container, and holds its verdicts to Admits.
func TestKyvernoCLI(t *testing.T) {
	bin := os.Getenv("TAGFLOW_KYVERNO")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache/tagflow-tools/kyverno-v1.15.2/kyverno")
	}
	bin = registrytest.Require(t, bin, "scripts/tools.sh builds the kyverno CLI")
	r := admissiontest.Rules(t)
	policy, err := r.Kyverno()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "policy.yaml"), policy, 0o644)
	var pods bytes.Buffer
	want := map[string]bool{} // pod name → admitted
	for i, c := range admissiontest.Cases {
		for _, kind := range admissiontest.Kinds {
			name := fmt.Sprintf("case-%d-%s", i, strings.ToLower(kind))
			p := admissiontest.Pod(c.NS, kind, c.Image)
			p["metadata"].(map[string]any)["name"] = name
			b, _ := yaml.Marshal(p)
			pods.WriteString("---\n")
			pods.Write(b)
			want[name] = c.Want
		}
	}
	os.WriteFile(filepath.Join(dir, "pods.yaml"), pods.Bytes(), 0o644)
	out, _ := exec.Command(bin, "apply", filepath.Join(dir, "policy.yaml"), "--resource", filepath.Join(dir, "pods.yaml")).CombinedOutput()
	failed := map[string]bool{}
	for _, m := range regexp.MustCompile(`resource \S+/Pod/(\S+) failed`).FindAllStringSubmatch(string(out), -1) {
		failed[m[1]] = true
	}
	if !strings.Contains(string(out), "pass: ") || strings.Contains(string(out), "Policies Skipped") {
		t.Fatalf("kyverno did not evaluate the policy:\n%s", out)
	}
	for name, admitted := range want {
		if failed[name] == admitted {
			t.Errorf("kyverno on %s: failed %v, want admitted %v", name, failed[name], admitted)
		}
	}
}
