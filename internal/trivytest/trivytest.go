// Package trivytest writes a small, valid Trivy vulnerability database with
// real advisories, the way Trivy's own integration fixtures do (trivy-db's
// types in a bolt file, metadata version 2), and finds the trivy binary that
// scripts/tools.sh builds.
package trivytest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	bolt "go.etcd.io/bbolt"

	"github.com/tagflow/tagflow/internal/registrytest"
)

// Advisory is one vulnerability of one package from one source.
type Advisory struct {
	Source     string // bucket: "go::GitHub Security Advisory Go", "debian 12"
	SourceID   string // ghsa, debian
	SourceName string
	Package    string // module path, or Debian source package
	ID         string
	Vulnerable []string // language advisories
	Patched    []string
	Fixed      string // OS advisories
	Severity   types.Severity
	Title      string
	Score      float64
}

// The real advisories the tests scan for.
var (
	// CVE-2022-32149: golang.org/x/text/language ParseAcceptLanguage DoS, fixed in 0.3.8.
	GoText = Advisory{
		Source: "go::GitHub Security Advisory Go", SourceID: "ghsa", SourceName: "GitHub Security Advisory Go",
		Package: "golang.org/x/text", ID: "CVE-2022-32149", Vulnerable: []string{"< 0.3.8"}, Patched: []string{"0.3.8"},
		Severity: types.SeverityHigh, Title: "golang: golang.org/x/text/language: ParseAcceptLanguage takes a long time to parse complex tags", Score: 7.5,
	}
	// CVE-2024-0727: OpenSSL PKCS12 NULL dereference, fixed in Debian 12 by 3.0.13-1~deb12u1.
	DebianOpenSSL = Advisory{
		Source: "debian 12", SourceID: "debian", SourceName: "Debian Security Tracker",
		Package: "openssl", ID: "CVE-2024-0727", Fixed: "3.0.13-1~deb12u1",
		Severity: types.SeverityMedium, Title: "openssl: denial of service via null dereference", Score: 5.5,
	}
)

// WriteDB writes <cacheDir>/db/trivy.db and metadata.json holding advisories.
func WriteDB(t testing.TB, cacheDir string, advisories ...Advisory) {
	t.Helper()
	dir := filepath.Join(cacheDir, "db")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "trivy.db"), 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	put := func(tx *bolt.Tx, path []string, key string, v any) error {
		b, err := tx.CreateBucketIfNotExists([]byte(path[0]))
		if err != nil {
			return err
		}
		for _, p := range path[1:] {
			if b, err = b.CreateBucketIfNotExists([]byte(p)); err != nil {
				return err
			}
		}
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), data)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, a := range advisories {
			if err := put(tx, []string{"data-source"}, a.Source, types.DataSource{ID: types.SourceID(a.SourceID), Name: a.SourceName}); err != nil {
				return err
			}
			if err := put(tx, []string{a.Source, a.Package}, a.ID, types.Advisory{
				VulnerableVersions: a.Vulnerable, PatchedVersions: a.Patched, FixedVersion: a.Fixed,
			}); err != nil {
				return err
			}
			if err := put(tx, []string{"vulnerability"}, a.ID, types.Vulnerability{
				Title: a.Title, Description: a.Title, Severity: a.Severity.String(),
				VendorSeverity: types.VendorSeverity{types.SourceID(a.SourceID): a.Severity, "nvd": a.Severity},
				CVSS:           types.VendorCVSS{"nvd": types.CVSS{V3Score: a.Score}},
				References:     []string{"https://nvd.nist.gov/vuln/detail/" + a.ID},
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := metadata.NewClient(dir).Update(metadata.Metadata{Version: 2, NextUpdate: now.Add(24 * time.Hour), UpdatedAt: now, DownloadedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// DBArtifact packs a DB written by WriteDB as the OCI artifact Trivy pulls
// with --db-repository.
func DBArtifact(t testing.TB, cacheDir string) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"trivy.db", "metadata.json"} {
		data, err := os.ReadFile(filepath.Join(cacheDir, "db", name))
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	tw.Close()
	gz.Close()
	layer := static.NewLayer(buf.Bytes(), "application/vnd.aquasec.trivy.db.layer.v1.tar+gzip")
	img := mutate.MediaType(empty.Image, ggcrtypes.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, "application/vnd.aquasec.trivy.config.v1+json")
	img, err := mutate.Append(img, mutate.Addendum{Layer: layer, Annotations: map[string]string{"org.opencontainers.image.title": "db.tar.gz"}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Binary returns the trivy binary (skips outside CI when missing).
func Binary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("TAGFLOW_TRIVY")
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".cache/tagflow-tools/trivy-v0.74.0/trivy")
	}
	return registrytest.Require(t, path, "scripts/tools.sh builds trivy")
}
