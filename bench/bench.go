// Package bench measures tagflow against the tools it replaces, side by side
// on the same loopback registries, in one `go test -bench` run
// (scripts/bench.sh). It holds no product code.
package bench
