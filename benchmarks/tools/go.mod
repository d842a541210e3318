// The plain tools benchmarks/run.py compares k4s with: gobusybox's makebb and u-root's
// mkuimage (the same gobusybox and x/tools versions as k4s's own tools).
module k4s.dev/benchmarks/tools

go 1.25.0

tool (
	github.com/u-root/gobusybox/src/cmd/makebb
	github.com/u-root/mkuimage/cmd/mkuimage
)

require (
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/hugelgupf/go-shlex v0.0.0-20200702092117-c80c9d0918fa // indirect
	github.com/pierrec/lz4/v4 v4.1.14 // indirect
	github.com/u-root/gobusybox/src v0.3.0 // indirect
	github.com/u-root/mkuimage v0.0.0-20250905073043-9a40452f5d3b // indirect
	github.com/u-root/uio v0.0.0-20240224005618-d2acac8f3701 // indirect
	golang.org/x/exp v0.0.0-20260312153236-7ab1446f8b90 // indirect
	golang.org/x/mod v0.34.0 // indirect
	golang.org/x/sync v0.20.0 // indirect
	golang.org/x/sys v0.42.0 // indirect
	golang.org/x/tools v0.43.0 // indirect
	gopkg.in/yaml.v3 v3.0.0 // indirect
	mvdan.cc/sh/v3 v3.11.0 // indirect
)
