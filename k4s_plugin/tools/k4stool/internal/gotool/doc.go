// Package gotool runs the go command inside a sandbox: its environment (Env:
// nothing that is not a declared input, the shared build cache's GOCACHEPROG),
// sandbox paths made absolute, and its failures as stable codes
// (ClassifyError).
package gotool
