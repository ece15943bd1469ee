//go:build race

package main

// raceBuild: the test binary is built with -race, as CI builds it; the
// cluster tests then run their short version.
const raceBuild = true
