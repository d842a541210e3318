// Package compile is step 3, `k4stool compile`: `go build` of the rewritten
// tree (the rewrite's tars unpacked into one GOPATH) into one static bb; and
// `k4stool linkexec`, the -toolexec that hands the linker -ldflags too long for
// a command line from a file.
package compile
