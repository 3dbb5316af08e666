package registry_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// corruptLayout writes a layout whose blobs have been truncated.
func corruptLayout(t *testing.T) string {
	t.Helper()
	dir := writeLayout(t, image(t, 1, 1024, time.Now()))
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if err != nil || len(blobs) == 0 {
		t.Fatalf("no blobs in %s: %v", dir, err)
	}
	for _, b := range blobs {
		if err := os.WriteFile(b, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
