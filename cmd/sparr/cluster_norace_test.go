//go:build !race

package main

// raceBuild: the test binary is built without -race, as `go test -run
// Cluster` builds it; the cluster tests then run their long version.
const raceBuild = false
