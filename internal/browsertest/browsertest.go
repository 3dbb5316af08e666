// Package browsertest loads pages in Debian's Chromium, headless, for tests
// that assert what a browser shows.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/tagflow/tagflow/internal/registrytest"
)

// Chromium returns the browser (skips outside CI when missing).
func Chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("TAGFLOW_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	return registrytest.Require(t, path, "scripts/tools.sh installs Debian's chromium")
}

// run starts Chromium headless with a fresh profile; the background
// networking flags keep it from reaching out on a closed network.
func run(t testing.TB, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir()}
	out, err := exec.CommandContext(ctx, Chromium(t), append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return out
}

// DOM returns the page's DOM after the browser loaded it.
func DOM(t testing.TB, url string) string {
	t.Helper()
	return string(run(t, "--dump-dom", url))
}

// Screenshot saves a PNG of the page at the given window size.
func Screenshot(t testing.TB, url, path string, width, height int) {
	t.Helper()
	run(t, "--screenshot="+path, "--window-size="+itoa(width)+","+itoa(height), url)
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", path, err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
