// Package giteatest runs a real Gitea on loopback for tests of the Gitea
// pull-request provider: built by scripts/tools.sh, started headless with its
// admin CLI (migrate, create user, generate token), one per test binary.
package giteatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tagflow/tagflow/internal/registrytest"
)

// Gitea is a running server with an admin user and a token.
type Gitea struct {
	URL      string // http://127.0.0.1:port
	User     string
	Password string
	Token    string
	dir      string
}

// Binary returns the gitea binary (skips the test outside CI when missing).
func Binary(t testing.TB) string {
	t.Helper()
	path := os.Getenv("TAGFLOW_GITEA")
	if path == "" {
		home, _ := os.UserHomeDir()
		path = filepath.Join(home, ".cache/tagflow-tools/gitea-v1.24.6/gitea")
	}
	return registrytest.Require(t, path, "scripts/tools.sh builds gitea")
}

const appIni = `APP_NAME = tagflow-test
RUN_USER = %[4]s
RUN_MODE = prod
WORK_PATH = %[1]s
I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[2]s
ROOT_URL = http://127.0.0.1:%[2]s/
DISABLE_SSH = true
OFFLINE_MODE = true
APP_DATA_PATH = %[1]s/data
LFS_START_SERVER = false
STATIC_ROOT_PATH = %[5]s

[database]
DB_TYPE = sqlite3
PATH = %[1]s/gitea.db

[repository]
ROOT = %[1]s/repos

[security]
INSTALL_LOCK = true
SECRET_KEY = %[3]s
INTERNAL_TOKEN = %[3]s

[service]
DISABLE_REGISTRATION = true

[oauth2]
ENABLED = false

[mailer]
ENABLED = false

[log]
MODE = console
LEVEL = error
ROOT_PATH = %[1]s/log

[cron]
ENABLED = false

[indexer]
REPO_INDEXER_ENABLED = false

[actions]
ENABLED = false
`

// Start runs Gitea until the test ends.
func Start(t testing.TB) *Gitea {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	user := os.Getenv("USER")
	if user == "" {
		user = "root"
	}
	ini := filepath.Join(dir, "app.ini")
	secret := "tagflowtestsecretkeytagflowtestsecretkey1234567890ab"
	// Locales and templates live beside the binary (built without bindata).
	if err := os.WriteFile(ini, []byte(fmt.Sprintf(appIni, dir, port, secret, user, filepath.Dir(bin))), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &Gitea{URL: "http://127.0.0.1:" + port, User: "gitops-admin", Password: "tagflow-Passw0rd!", dir: dir}
	gitea := func(args ...string) string {
		cmd := exec.Command(bin, append([]string{"--config", ini, "--work-path", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GITEA_WORK_DIR="+dir, "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gitea %s: %v\n%s", args[0], err, out)
		}
		return string(out)
	}
	gitea("migrate")
	gitea("admin", "user", "create", "--username", g.User, "--password", g.Password, "--email", "tagflow@example.invalid", "--admin", "--must-change-password=false")
	out := gitea("admin", "user", "generate-access-token", "--username", g.User, "--token-name", "tests", "--scopes", "all", "--raw")
	lines := strings.Fields(strings.TrimSpace(out))
	g.Token = lines[len(lines)-1]

	var log bytes.Buffer
	cmd := exec.Command(bin, "--config", ini, "--work-path", dir, "web")
	cmd.Env = append(os.Environ(), "GITEA_WORK_DIR="+dir, "HOME="+dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(g.URL + "/api/v1/version")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return g
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gitea did not answer within 60s: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// API calls the API as the admin and decodes the answer into into (if not nil).
func (g *Gitea) API(t testing.TB, method, path string, body, into any) int {
	t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, g.URL+"/api/v1"+path, r)
	req.Header.Set("Authorization", "token "+g.Token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if into != nil {
		json.NewDecoder(res.Body).Decode(into)
	}
	return res.StatusCode
}

// Repo creates an empty repository, pushes the seed work tree's HEAD to its
// main branch, and waits until Gitea reports it non-empty (its API can
// answer 500 right after the first push). It returns the clone URL.
func (g *Gitea) Repo(t testing.TB, name, seedDir string) string {
	t.Helper()
	if st := g.API(t, http.MethodPost, "/user/repos", map[string]any{"name": name, "default_branch": "main"}, nil); st != http.StatusCreated {
		t.Fatalf("creating repo %s: HTTP %d", name, st)
	}
	clone := g.URL + "/" + g.User + "/" + name + ".git"
	authURL := strings.Replace(clone, "http://", "http://"+g.User+":"+g.Token+"@", 1)
	cmd := exec.Command("git", "-C", seedDir, "push", authURL, "HEAD:refs/heads/main")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pushing the seed: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var repo struct {
			Empty bool `json:"empty"`
		}
		if g.API(t, http.MethodGet, "/repos/"+g.User+"/"+name, nil, &repo) == http.StatusOK && !repo.Empty {
			return clone
		}
		if time.Now().After(deadline) {
			t.Fatalf("repo %s still empty after the push", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
