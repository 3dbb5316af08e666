// Package admission_test evaluates the exported Gatekeeper Rego with the
// real OPA library. It is its own module so that OPA's OpenTelemetry
// requirements stay out of tagflow's module, whose Dagger SDK needs others.
package admission_test

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/tagflow/tagflow/internal/admissiontest"
)

// TestGatekeeperRego evaluates the generated ConstraintTemplate's Rego with
// OPA, with each generated Constraint's parameters, against admission
// reviews for every kind of container.
func TestGatekeeperRego(t *testing.T) {
	r := admissiontest.Rules(t)
	out, err := r.Gatekeeper()
	if err != nil {
		t.Fatal(err)
	}
	ds := admissiontest.Docs(t, out)
	if len(ds) != 3 || ds[0]["kind"] != "ConstraintTemplate" || ds[1]["kind"] != "TagflowImages" || ds[2]["kind"] != "TagflowImages" {
		t.Fatalf("gatekeeper export kinds: %v", ds)
	}
	module := admissiontest.Dig(ds[0], "spec", "targets", 0, "rego").(string)
	q, err := rego.New(rego.Query("data.tagflowimages.violation"), rego.Module("tagflow.rego", module)).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("the Rego does not compile: %v", err)
	}
	general := admissiontest.Dig(ds[1], "spec", "parameters")
	pinned := admissiontest.Dig(ds[2], "spec", "parameters")
	if ns := admissiontest.Dig(ds[2], "spec", "match", "namespaces", 0); ns != "prod" {
		t.Fatalf("digest constraint matches %v", ns)
	}
	for _, kind := range admissiontest.Kinds {
		for _, c := range admissiontest.Cases {
			params := general
			if c.NS == "prod" {
				// Both constraints apply in prod; a pod is admitted when neither objects.
				params = pinned
			}
			res, err := q.Eval(context.Background(), rego.EvalInput(map[string]any{
				"review":     map[string]any{"object": admissiontest.Pod(c.NS, kind, c.Image), "kind": map[string]any{"kind": "Pod"}, "operation": "CREATE"},
				"parameters": params,
			}))
			if err != nil {
				t.Fatal(err)
			}
			violations := res[0].Expressions[0].Value.([]any)
			if admitted := len(violations) == 0; admitted != c.Want {
				t.Errorf("gatekeeper %s %s in %s: admitted %v, want %v (%v)", kind, c.Image, c.NS, admitted, c.Want, violations)
			}
			if !c.Want && len(violations) > 0 && !strings.Contains(violations[0].(map[string]any)["msg"].(string), c.Image) {
				t.Errorf("message does not name the image: %v", violations[0])
			}
		}
	}
}
