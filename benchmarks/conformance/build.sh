#!/bin/sh
# Build the upstream Kubernetes e2e test binary (k8s.io/kubernetes/test/e2e, the
# profiles' Kubernetes version) from this module's go.mod/go.sum, into
# dist/conformance/e2e.test (or $1), and the ginkgo CLI beside it. docs/conformance.md says why this is a script
# and not a Pants target.
#
#     nice -n 19 benchmarks/conformance/build.sh [OUT]
#
# Pinned: the Go toolchain (GOTOOLCHAIN, the version the Pants plugin builds with,
# fetched through your GOPROXY if the installed go is another one), every module
# (-mod=readonly: go.sum must already hold it, nothing is resolved anew), the
# version strings (the K8S_LDFLAGS of distros/command_groups.py). No cgo; -trimpath;
# no go vet (upstream code; the binary is the same without it).
# Your GOPROXY, GOSUMDB, GOMODCACHE and GOCACHE are respected.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$repo/dist/conformance/e2e.test}
k8s=v1.37.2
if ! grep -qE "^(require)?[[:space:]]*k8s.io/kubernetes $k8s\$" "$here/go.mod"; then
	echo "conformance/build.sh: $here/go.mod does not require k8s.io/kubernetes $k8s;" \
		"keep the script's k8s= and go.mod equal to distros/command_groups.py K8S_VERSION" >&2
	exit 1
fi
mkdir -p "$(dirname "$out")"
cd "$here"
export GOTOOLCHAIN=go1.26.8 CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOFLAGS="-mod=readonly -buildvcs=false"
# The ginkgo CLI beside it (conformance.py --nodes N runs e2e.test on N processes), at
# the ginkgo version go.mod pins for the suite.
go build -trimpath -ldflags "-s -w" -o "$(dirname "$out")/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
exec go test -c -vet=off -o "$out" -trimpath -ldflags "-s -w \
-X k8s.io/component-base/version.gitVersion=$k8s \
-X k8s.io/component-base/version.gitMajor=1 \
-X k8s.io/component-base/version.gitMinor=37 \
-X k8s.io/component-base/version.gitTreeState=clean \
-X k8s.io/client-go/pkg/version.gitVersion=$k8s \
-X k8s.io/client-go/pkg/version.gitMajor=1 \
-X k8s.io/client-go/pkg/version.gitMinor=37" \
	k8s.io/kubernetes/test/e2e
