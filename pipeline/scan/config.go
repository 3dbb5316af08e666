package scan

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tagflow/tagflow/pipeline/config"
)

// OptionsFrom turns the scan configuration into options; paths are
// relative to the config file. A .trivyignore beside the config is used when
// none is configured.
func OptionsFrom(cfg *config.Config) (Options, error) {
	s := cfg.Scan
	o := Options{Trivy: s.Trivy, DBRepository: s.DBRepository, IgnoreUnfixed: s.IgnoreUnfixed, Gate: s.Severity, Offline: s.Offline}
	if s.CacheDir != "" {
		o.CacheDir = relativeTo(cfg.Dir, s.CacheDir)
	}
	switch {
	case s.IgnoreFile != "":
		o.IgnoreFile = relativeTo(cfg.Dir, s.IgnoreFile)
	default:
		if p := filepath.Join(cfg.Dir, ".trivyignore"); fileExists(p) {
			o.IgnoreFile = p
		}
	}
	for _, a := range s.Allow {
		until, err := time.Parse(time.DateOnly, a.Until)
		if err != nil {
			return Options{}, fmt.Errorf("scan.allow %s: %w", a.ID, err)
		}
		o.Allow = append(o.Allow, Allow{ID: a.ID, Until: until, Reason: a.Reason})
	}
	return o, nil
}

// relativeTo resolves a configured path against the config's directory;
// an absolute path stays as it is.
func relativeTo(dir, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
