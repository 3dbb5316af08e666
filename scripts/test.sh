#!/usr/bin/env bash
# The one test command: formatting, vet, and every test with the race
# detector, the real components included. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tools"
./scripts/tools.sh
eval "$(./scripts/tools.sh env | sed 's/^/export /')"

echo "== gofmt"
unformatted=$(gofmt -l . | grep -v '^vendor/' || true)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
(cd examples/echo-server && go vet ./...)
(cd tests/admission && go vet ./...)

echo "== go test"
go test -race -count=1 ./...
(cd examples/echo-server && go test -race -count=1 ./...)
(cd tests/admission && go test -race -count=1 ./...)
