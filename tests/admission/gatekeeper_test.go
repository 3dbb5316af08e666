// Package admission_test evaluates the exported Gatekeeper Rego with the
// real OPA library. It is its own module so that OPA's OpenTelemetry
// requirements stay out of tagflow's module, whose Dagger SDK needs others.
package admission_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"gopkg.in/yaml.v3"

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

// TestGatekeeperRego evaluates the generated ConstraintTemplate's Rego with
// OPA, with each generated Constraint's parameters, against admission
// reviews for every kind of container.
func TestGatekeeperRego(t *testing.T) {
	r := rules(t)
	out, err := r.Gatekeeper()
	if err != nil {
		t.Fatal(err)
	}
	ds := docs(t, out)
	if len(ds) != 3 || ds[0]["kind"] != "ConstraintTemplate" || ds[1]["kind"] != "TagflowImages" || ds[2]["kind"] != "TagflowImages" {
		t.Fatalf("gatekeeper export kinds: %v", ds)
	}
	module := dig(ds[0], "spec", "targets", 0, "rego").(string)
	q, err := rego.New(rego.Query("data.tagflowimages.violation"), rego.Module("tagflow.rego", module)).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("the Rego does not compile: %v", err)
	}
	general := dig(ds[1], "spec", "parameters")
	pinned := dig(ds[2], "spec", "parameters")
	if ns := dig(ds[2], "spec", "match", "namespaces", 0); ns != "prod" {
		t.Fatalf("digest constraint matches %v", ns)
	}
	for _, kind := range []string{"containers", "initContainers", "ephemeralContainers"} {
		for _, c := range cases {
			params := general
			if c.ns == "prod" {
				// Both constraints apply in prod; a pod is admitted when neither objects.
				params = pinned
			}
			res, err := q.Eval(context.Background(), rego.EvalInput(map[string]any{
				"review":     map[string]any{"object": pod(c.ns, kind, c.image), "kind": map[string]any{"kind": "Pod"}, "operation": "CREATE"},
				"parameters": params,
			}))
			if err != nil {
				t.Fatal(err)
			}
			violations := res[0].Expressions[0].Value.([]any)
			if admitted := len(violations) == 0; admitted != c.want {
				t.Errorf("gatekeeper %s %s in %s: admitted %v, want %v (%v)", kind, c.image, c.ns, admitted, c.want, violations)
			}
			if !c.want && len(violations) > 0 && !strings.Contains(violations[0].(map[string]any)["msg"].(string), c.image) {
				t.Errorf("message does not name the image: %v", violations[0])
			}
		}
	}
}
