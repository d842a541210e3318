//go:build tools

// Package tools pins, for `go mod tidy`, the module the runc seccomp patch imports.
package tools

import _ "github.com/elastic/go-seccomp-bpf/arch"
