package promote_test

import (
	"testing"

	"github.com/Masterminds/semver/v3"
)

func mustSemver(t *testing.T, s string) *semver.Version {
	t.Helper()
	v, err := semver.StrictNewVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
