package admission_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tagflow/tagflow/internal/registrytest"
	"github.com/tagflow/tagflow/pipeline/admission"
	"github.com/tagflow/tagflow/pipeline/config"
)

const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func rules(t *testing.T) admission.Rules {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte("registry: ghcr.io/acme\nregistries:\n  allowed: [ghcr.io/acme, 127.0.0.1:5000]\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := admission.From(cfg, []string{"prod"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cases: image, namespace → admitted.
var cases = []struct {
	image, ns string
	want      bool
}{
	{"ghcr.io/acme/echo:v1.4.2", "dev", true},
	{"ghcr.io/acme/echo:1a2b3c4", "dev", true},
	{"ghcr.io/acme/team/echo:env-staging", "staging", true},
	{"127.0.0.1:5000/echo:v2.0.0" + digest, "dev", true},
	{"ghcr.io/acme/echo" + digest, "dev", true},
	{"ghcr.io/acme/echo:latest", "dev", false},
	{"ghcr.io/acme/echo", "dev", false},
	{"ghcr.io/acme/echo:v1.4", "dev", false},
	{"ghcr.io/acme/echo:1A2B3C4", "dev", false},
	{"docker.io/library/nginx:1.25", "dev", false},
	{"nginx", "dev", false},
	{"ghcr.io/acme-evil/echo:v1.0.0", "dev", false},
	{"ghcr.io/acme/echo:v1.4.2", "prod", false},
	{"ghcr.io/acme/echo:v1.4.2" + digest, "prod", true},
}

func TestAdmits(t *testing.T) {
	r := rules(t)
	for _, c := range cases {
		if got := r.Admits(c.image, c.ns); got != c.want {
			t.Errorf("Admits(%s in %s) = %v, want %v", c.image, c.ns, got, c.want)
		}
	}
}

// docs splits a multi-document YAML into maps.
func docs(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("the export is not YAML: %v\n%s", err, data)
		}
		out = append(out, m)
	}
}

func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			v = v.(map[string]any)[k]
		case int:
			v = v.([]any)[k]
		}
	}
	return v
}

func pod(ns string, kind, image string) map[string]any {
	spec := map[string]any{"containers": []any{map[string]any{"name": "app", "image": "ghcr.io/acme/echo:v1.4.2" + digest}}}
	if kind == "containers" {
		spec["containers"] = []any{map[string]any{"name": "app", "image": image}}
	} else {
		spec[kind] = []any{map[string]any{"name": "extra", "image": image}}
	}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": ns}, "spec": spec}
}

// TestKyverno checks the ClusterPolicy's structure and evaluates its
// regex_match condition (Go's regexp, as Kyverno's is) against the cases.
func TestKyverno(t *testing.T) {
	r := rules(t)
	out, err := r.Kyverno()
	if err != nil {
		t.Fatal(err)
	}
	ds := docs(t, out)
	if len(ds) != 1 || ds[0]["kind"] != "ClusterPolicy" || ds[0]["apiVersion"] != "kyverno.io/v1" {
		t.Fatalf("kyverno export: %v", ds)
	}
	allowed := dig(ds[0], "spec", "rules", 0)
	if dig(allowed, "validate", "failureAction") != "Enforce" {
		t.Error("the policy does not enforce")
	}
	foreach := dig(allowed, "validate", "foreach").([]any)
	var lists []string
	for _, f := range foreach {
		lists = append(lists, dig(f, "list").(string))
		key := dig(f, "deny", "conditions", "any", 0, "key").(string)
		m := regexp.MustCompile(`regex_match\('(.*)', element\.image\)`).FindStringSubmatch(key)
		if m == nil {
			t.Fatalf("condition %q has no regex_match", key)
		}
		re := regexp.MustCompile(strings.ReplaceAll(m[1], `\'`, `'`))
		for _, c := range cases {
			if c.ns == "prod" {
				continue // the digest rule below
			}
			if got := re.MatchString(c.image); got != c.want {
				t.Errorf("kyverno condition on %s: match %v, want %v", c.image, got, c.want)
			}
		}
	}
	if strings.Join(lists, ",") != "request.object.spec.containers,request.object.spec.initContainers || `[]`,request.object.spec.ephemeralContainers || `[]`" {
		t.Errorf("foreach lists = %v", lists)
	}
	pinned := dig(ds[0], "spec", "rules", 1)
	if dig(pinned, "match", "any", 0, "resources", "namespaces", 0) != "prod" || dig(pinned, "validate", "foreach", 0, "deny", "conditions", "any", 0, "value") != "*@sha256:*" {
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
	r := rules(t)
	policy, err := r.Kyverno()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "policy.yaml"), policy, 0o644)
	var pods bytes.Buffer
	want := map[string]bool{} // pod name → admitted
	for i, c := range cases {
		for _, kind := range []string{"containers", "initContainers", "ephemeralContainers"} {
			name := fmt.Sprintf("case-%d-%s", i, strings.ToLower(kind))
			p := pod(c.ns, kind, c.image)
			p["metadata"].(map[string]any)["name"] = name
			b, _ := yaml.Marshal(p)
			pods.WriteString("---\n")
			pods.Write(b)
			want[name] = c.want
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
