// Package registrytest starts real registries on loopback for tests:
// Debian's docker-registry (distribution 2.8) and distribution v3, installed
// by scripts/tools.sh. Each registry gets its own storage under the test's
// temporary directory and is stopped when the test ends.
package registrytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"text/template"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Kind names a registry implementation.
type Kind string

const (
	V2 Kind = "distribution-2.8" // Debian's docker-registry: cannot delete a single tag
	V3 Kind = "distribution-v3"
)

// Kinds are the real registries every integration test runs against.
var Kinds = []Kind{V2, V3}

// Options shape a registry.
type Options struct {
	TLS      bool   // serve HTTPS with a fresh self-signed certificate for 127.0.0.1
	User     string // with Password: require htpasswd basic auth
	Password string
	// Notify, when set, is an endpoint that receives registry notifications.
	Notify       string
	NotifyHeader map[string]string
}

// Registry is a running registry.
type Registry struct {
	Kind   Kind
	Host   string // 127.0.0.1:port
	CAFile string // PEM of the self-signed certificate, when TLS
	Dir    string // storage root
	Log    *bytes.Buffer

	t      testing.TB
	bin    string
	cfg    string
	cmd    *exec.Cmd
	exited chan error
}

// URL is the registry's base URL.
func (r *Registry) URL() string {
	if r.CAFile != "" {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// Binary returns the path of a registry implementation, skipping the test
// when it is missing outside CI and failing it in CI, where scripts/tools.sh
// must have installed it.
func Binary(t testing.TB, k Kind) string {
	t.Helper()
	env := map[Kind]string{V2: "TAGFLOW_REGISTRY_V2", V3: "TAGFLOW_REGISTRY_V3"}[k]
	path := os.Getenv(env)
	if path == "" {
		home, _ := os.UserHomeDir()
		path = map[Kind]string{V2: "/usr/bin/docker-registry", V3: filepath.Join(home, ".cache/tagflow-tools/distribution-v3.1.2/registry")}[k]
	}
	return Require(t, path, "scripts/tools.sh installs it")
}

// Require returns path when it is an executable file; otherwise it skips the
// test, or fails it when CI is set.
func Require(t testing.TB, path, hint string) string {
	t.Helper()
	if st, err := os.Stat(path); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing: %s", path, hint)
	}
	t.Skipf("%s is missing (%s)", path, hint)
	return ""
}

var configTemplate = template.Must(template.New("cfg").Parse(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {{.Dir}}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {{.Host}}
  secret: tagflow-test-secret
{{- if .Cert}}
  tls:
    certificate: {{.Cert}}
    key: {{.Key}}
{{- end}}
{{- if .Htpasswd}}
auth:
  htpasswd:
    realm: tagflow-test
    path: {{.Htpasswd}}
{{- end}}
{{- if .Notify}}
notifications:
  endpoints:
    - name: tagflow
      url: {{.Notify}}
      timeout: 2s
      threshold: 3
      backoff: 1s
{{- if .Headers}}
      headers:
{{- range $k, $v := .Headers}}
        {{$k}}: [{{printf "%q" $v}}]
{{- end}}
{{- end}}
{{- end}}
`))

// Start runs a registry of kind k and stops it when the test ends.
func Start(t testing.TB, k Kind, o Options) *Registry {
	t.Helper()
	bin := Binary(t, k)
	dir := t.TempDir()
	r := &Registry{Kind: k, Host: freeAddr(t), Dir: filepath.Join(dir, "storage"), Log: &bytes.Buffer{}}
	data := map[string]any{"Dir": r.Dir, "Host": r.Host, "Notify": o.Notify, "Headers": o.NotifyHeader}
	if o.TLS {
		cert, key := selfSigned(t, dir)
		data["Cert"], data["Key"] = cert, key
		r.CAFile = cert
	}
	if o.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		data["Htpasswd"] = pw
	}
	var cfg bytes.Buffer
	if err := configTemplate.Execute(&cfg, data); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgFile, cfg.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	r.t, r.bin, r.cfg = t, bin, cfgFile
	r.start()
	t.Cleanup(r.Stop)
	return r
}

func (r *Registry) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "serve", r.cfg)
	r.cmd.Stdout, r.cmd.Stderr = r.Log, r.Log
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none", "OTEL_SDK_DISABLED=true")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting %s: %v", r.bin, err)
	}
	r.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(r.cmd, r.exited)
	if err := waitReady(r, r.exited); err != nil {
		r.t.Fatalf("%s did not start: %v\n%s", r.Kind, err, r.Log)
	}
}

// Stop kills the registry, as a crash would; storage stays.
func (r *Registry) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// Restart starts a stopped registry again on the same address and storage.
func (r *Registry) Restart() {
	r.t.Helper()
	r.Stop()
	r.start()
}

func waitReady(r *Registry, exited chan error) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: insecureTLS()}}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err // Stop waits for it too
			return fmt.Errorf("exited: %v", err)
		default:
		}
		res, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK || res.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer on %s/v2/ within 20s", r.URL())
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// selfSigned writes a certificate for 127.0.0.1 and localhost and its key.
func selfSigned(t testing.TB, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "tagflow test registry"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// Has reports whether the log mentions s (for diagnosing failures).
func (r *Registry) Has(s string) bool { return strings.Contains(r.Log.String(), s) }
