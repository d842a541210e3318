//go:build fancy

package main

// With the `fancy` build tag, hello greets differently (tests build_tags).
func init() { greeting = "fancy hello from k4s" }
