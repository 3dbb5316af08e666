// Package admissiontest holds the decision table the exported admission
// policies are held to, and helpers to build pods and read the exports.
package admissiontest

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tagflow/tagflow/pipeline/admission"
	"github.com/tagflow/tagflow/pipeline/config"
)

// Digest is a well-formed digest suffix.
const Digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// Case is one image in one namespace and whether it is admitted.
type Case struct {
	Image, NS string
	Want      bool
}

// Cases is the decision table.
var Cases = []Case{
	{"ghcr.io/acme/echo:v1.4.2", "dev", true},
	{"ghcr.io/acme/echo:1a2b3c4", "dev", true},
	{"ghcr.io/acme/team/echo:env-staging", "staging", true},
	{"127.0.0.1:5000/echo:v2.0.0" + Digest, "dev", true},
	{"ghcr.io/acme/echo" + Digest, "dev", true},
	{"ghcr.io/acme/echo:latest", "dev", false},
	{"ghcr.io/acme/echo", "dev", false},
	{"ghcr.io/acme/echo:v1.4", "dev", false},
	{"ghcr.io/acme/echo:1A2B3C4", "dev", false},
	{"docker.io/library/nginx:1.25", "dev", false},
	{"nginx", "dev", false},
	{"ghcr.io/acme-evil/echo:v1.0.0", "dev", false},
	{"ghcr.io/acme/echo:v1.4.2", "prod", false},
	{"ghcr.io/acme/echo:v1.4.2" + Digest, "prod", true},
}

// Kinds are the pod's container lists.
var Kinds = []string{"containers", "initContainers", "ephemeralContainers"}

// Rules are the rules of a config allowing ghcr.io/acme and 127.0.0.1:5000,
// with prod requiring digests.
func Rules(t testing.TB) admission.Rules {
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

// Pod puts image in a pod of namespace ns, in the given kind of container
// (next to an admitted main container for init and ephemeral ones).
func Pod(ns, kind, image string) map[string]any {
	spec := map[string]any{"containers": []any{map[string]any{"name": "app", "image": "ghcr.io/acme/echo:v1.4.2" + Digest}}}
	if kind == "containers" {
		spec["containers"] = []any{map[string]any{"name": "app", "image": image}}
	} else {
		spec[kind] = []any{map[string]any{"name": "extra", "image": image}}
	}
	return map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]any{"name": "p", "namespace": ns}, "spec": spec}
}

// Docs splits a multi-document YAML export into maps.
func Docs(t testing.TB, data []byte) []map[string]any {
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

// Dig walks maps (string keys) and lists (int indexes).
func Dig(v any, path ...any) any {
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
