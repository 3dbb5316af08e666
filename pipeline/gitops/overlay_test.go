package gitops_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tagflow/tagflow/pipeline/gitops"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const (
	oldDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	newDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

func TestSetGolden(t *testing.T) {
	img := gitops.Image{Repository: "ghcr.io/acme/echo-server", Tag: "v1.4.2", Digest: newDigest}
	for _, tc := range []struct {
		name   string
		edits  []gitops.Edit
		create bool
	}{
		{"helm", []gitops.Edit{{Path: "image.tag", Value: img.Tag}, {Path: "image.digest", Value: img.Digest}, {Path: "image.repository", Value: img.Repository}}, false},
		{"sha", []gitops.Edit{{Path: "image.tag", Value: "1234567"}}, false}, // all digits: must stay a string
		{"reference", []gitops.Edit{{Path: "app.image", Value: img.Value(gitops.FieldReference)}}, false},
		{"create", []gitops.Edit{{Path: "image.digest", Value: img.Digest}, {Path: "image.tag", Value: img.Tag}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata/overlay", tc.name+".yaml"))
			if err != nil {
				t.Fatal(err)
			}
			got, changed, err := gitops.Set(in, tc.edits, tc.create)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata/overlay", tc.name+".golden")
			if *update {
				os.WriteFile(golden, got, 0o644)
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) || !changed {
				t.Errorf("Set(%s) changed=%v:\n%s\nwant:\n%s", tc.name, changed, got, want)
			}
			// The result reads back with the new values, as strings.
			var doc map[string]any
			if err := yaml.Unmarshal(got, &doc); err != nil {
				t.Fatalf("result is not YAML: %v", err)
			}
			for _, e := range tc.edits {
				var v any = doc
				for _, k := range strings.Split(e.Path, ".") {
					v = v.(map[string]any)[k]
				}
				if s, ok := v.(string); !ok || s != e.Value {
					t.Errorf("%s reads back as %#v, want the string %q", e.Path, v, e.Value)
				}
			}
			// Applying the same edits again is a no-op, byte for byte.
			again, changed, err := gitops.Set(got, tc.edits, tc.create)
			if err != nil || changed || string(again) != string(got) {
				t.Errorf("second Set changed=%v err=%v", changed, err)
			}
		})
	}
}

func TestSetErrors(t *testing.T) {
	doc := []byte("image:\n  tag: v1\n  ports: [80]\n  env: {a: b}\nlist:\n  - x\nblock: |\n  text\n")
	for _, tc := range []struct {
		path   string
		create bool
		is     error
		says   string
	}{
		{"image.digest", false, gitops.ErrNoKey, `no "digest" under image`},
		{"missing.tag", false, gitops.ErrNoKey, `no "missing" under the document`},
		{"image.ports", false, gitops.ErrUnsupported, "holds a list"},
		{"image.tag.x", false, gitops.ErrUnsupported, "image.tag is not a mapping"},
		{"image.env.b", true, gitops.ErrUnsupported, "flow mapping"},
		{"block", false, gitops.ErrUnsupported, "block scalar"},
		{"list.x", true, gitops.ErrUnsupported, "list is not a mapping"},
	} {
		_, _, err := gitops.Set(doc, []gitops.Edit{{Path: tc.path, Value: "v2"}}, tc.create)
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.says) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("Set(%s) = %v, want %v saying %q", tc.path, err, tc.is, tc.says)
		}
	}
	if _, _, err := gitops.Set([]byte("a: [unclosed\n"), []gitops.Edit{{Path: "a", Value: "x"}}, false); err == nil {
		t.Error("invalid YAML accepted")
	}
}

func TestSetNoOp(t *testing.T) {
	doc := []byte("image:\n  tag: \"v1.4.2\" # same\n")
	out, changed, err := gitops.Set(doc, []gitops.Edit{{Path: "image.tag", Value: "v1.4.2"}}, false)
	if err != nil || changed || string(out) != string(doc) {
		t.Errorf("no-op edit: changed=%v err=%v out=%q", changed, err, out)
	}
	// The same text but not a string (a number) is rewritten as a string.
	doc = []byte("image:\n  tag: 1234567\n")
	out, changed, err = gitops.Set(doc, []gitops.Edit{{Path: "image.tag", Value: "1234567"}}, false)
	if err != nil || !changed || string(out) != "image:\n  tag: \"1234567\"\n" {
		t.Errorf("number to string: changed=%v err=%v out=%q", changed, err, out)
	}
}

func TestSetEmptyFileCreate(t *testing.T) {
	out, changed, err := gitops.Set(nil, []gitops.Edit{{Path: "image.tag", Value: "v1.0.0"}}, true)
	if err != nil || !changed || string(out) != "image:\n  tag: v1.0.0\n" {
		t.Errorf("create in empty file: %q %v %v", out, changed, err)
	}
	if _, _, err := gitops.Set(nil, []gitops.Edit{{Path: "image.tag", Value: "v1.0.0"}}, false); !errors.Is(err, gitops.ErrNoKey) {
		t.Errorf("empty file without create = %v", err)
	}
}

func TestOverlayPath(t *testing.T) {
	const tmpl = "apps/{service}/overlays/{env}/values.yaml"
	if p, err := gitops.OverlayPath(tmpl, "echo-server", "prod"); err != nil || p != "apps/echo-server/overlays/prod/values.yaml" {
		t.Errorf("OverlayPath = %q, %v", p, err)
	}
	for _, tc := range [][3]string{
		{tmpl, "../etc", "prod"},
		{tmpl, "echo", "../../x"},
		{tmpl, "a/b", "prod"},
		{tmpl, "echo", "prod/../../.."},
		{tmpl, ".hidden", "prod"},
		{tmpl, "echo", ""},
		{"/abs/{service}/{env}.yaml", "echo", "prod"},
		{"../{service}/{env}.yaml", "echo", "prod"},
		{"apps/{service}/../../{env}.yaml", "echo", "prod"},
	} {
		if p, err := gitops.OverlayPath(tc[0], tc[1], tc[2]); !errors.Is(err, gitops.ErrName) {
			t.Errorf("OverlayPath(%q, %q, %q) = %q, %v; want ErrName", tc[0], tc[1], tc[2], p, err)
		}
	}
}
