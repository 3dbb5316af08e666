package webhook_test

import "github.com/Masterminds/semver/v3"

func tagsInput(v string) (*semver.Version, error) { return semver.StrictNewVersion(v) }
