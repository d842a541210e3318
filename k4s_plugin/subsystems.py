"""Options of k4s: the Go SDK its steps run, where they run, and what they see."""

from __future__ import annotations

from enum import Enum

from pants.core.util_rules.environments import LOCAL_ENVIRONMENT_MATCHER
from pants.option.option_types import EnumOption, StrListOption, StrOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap

# The Go SDK k4s builds with by default, and the official toolchain zips the Go module
# proxy serves for it (golang.org/toolchain@v0.0.1-go<version>.<goos>-<goarch>): sha256
# and size of each zip, checked against the Go checksum database by
# `go mod download -json golang.org/toolchain@v0.0.1-go1.26.8.linux-amd64` (its `Zip`).
GO_VERSION = "1.26.8"
GO_KNOWN_VERSIONS = [
    "1.26.8|linux_x86_64|30c2b1bf7dcc88d3eb0a1364e47ddd9128edb3110a30e8a0ef61cd5856b31de7|71680185",
    "1.26.8|linux_arm64|02b36b6787b3ac767668f630e2998df45a3b1f9ffee08d1bf3ef6487cd658d99|68581891",
]


class RemoteFallback(Enum):
    """What a step does when the remote engine, not the step, fails it."""

    local = "local"
    fail = "fail"


class K4sGo(Subsystem):
    options_scope = "k4s-go"
    help = softwrap(
        """
        How k4s runs the Go SDK in its sandboxed steps. The SDK is the official Go
        toolchain zip from the Go module proxy (the first http(s) entry of `GOPROXY`,
        default https://proxy.golang.org), pinned by sha256: no Go on this machine is
        used. It reaches each step as an input digest, so steps run the same SDK here
        and on remote executors. Where the steps run is `environment`; what a step
        does when remote execution, not the build, fails it is `remote_fallback`
        (`./pants help-advanced k4s-go`).
        """
    )

    version = StrOption(
        default=GO_VERSION,
        help=softwrap(
            """
            The Go version every step builds with (`go1.26.8` is `1.26.8`). It must have
            an entry in `known_versions` for the platform the steps run on.
            """
        ),
    )

    known_versions = StrListOption(
        default=GO_KNOWN_VERSIONS,
        help=softwrap(
            """
            The Go SDKs k4s may fetch, one `version|platform|sha256|size` per SDK:
            `platform` is a Pants platform (`linux_x86_64`, `linux_arm64`,
            `macos_x86_64`, `macos_arm64`), `sha256` and `size` those of the toolchain
            zip `<GOPROXY>/golang.org/toolchain/@v/v0.0.1-go<version>.<goos>-<goarch>.zip`.
            A zip whose hash differs fails the build. To add one:
            `go mod download -json golang.org/toolchain@v0.0.1-go<version>.linux-amd64`
            (checked against the Go checksum database) prints the zip's path; take its
            `sha256sum` and size.
            """
        ),
        advanced=True,
    )

    environment = StrOption(
        default=LOCAL_ENVIRONMENT_MATCHER,
        help=softwrap(
            f"""
            The environment k4s's steps run in: building k4stool, the module download,
            the rewrite, the compile, packing images and the size report. A name from
            `[environments-preview].names` (a `remote_environment` runs them on REAPI
            executors: see pants.remote-exec.toml), or `{LOCAL_ENVIRONMENT_MATCHER}`
            (this machine). Reading this machine's kernel and its modules
            (`kernel_modules`) always runs here.
            """
        ),
        advanced=True,
    )

    env_vars = StrListOption(
        default=["GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOFLAGS", "GOINSECURE"],
        help=softwrap(
            """
            Environment variables passed from Pants' environment into the sandboxes that
            run the go command. `NAME` passes the variable if set; `NAME=value` sets it.
            They are part of each step's cache key, and reach remote executors with it.
            Nothing else of the host environment (GOPATH, HOME, ~/go, GOENV files) is
            visible to a step.
            """
        ),
        advanced=True,
    )

    remote_fallback = EnumOption(
        default=RemoteFallback.local,
        help=softwrap(
            """
            What happens when `environment` is a `remote_environment` and a step fails
            because of the remote execution infrastructure, not because of the build:
            the engine cannot be reached or gives up (Pants itself retries an action
            five times first, e.g. when an executor's runner dies), or the step's
            process was killed on the executor (SIGKILL, SIGTERM, SIGINT or SIGHUP, with
            no k4s error of its own: an out-of-memory kill, a stopped worker).
            `local` runs that same step once more on this machine and logs a warning
            naming the target, the step and the cause; the result is the same bytes.
            `fail` stops the build with an error naming the engine's address and the
            fixes. A step that fails on its own (a k4stool `E_*` error, a compiler
            error) always fails the build, in either mode, and is never rerun.
            """
        ),
        advanced=True,
    )

    shared_build_cache = StrOption(
        default=None,
        help=softwrap(
            """
            A REAPI cache (`grpc://host:port`, or `grpcs://host:port`: TLS checked
            against the system's CAs) that the go command's build cache is shared
            through, package by package: the rewrite's and the compile's go commands
            run `k4stool gocache` as `GOCACHEPROG`, which keeps the local
            `kuties_go_build` named cache as today (Go's own layout) and, on a local
            miss, asks this cache; what it compiles it also uploads. A compiled package
            is a CAS blob (Go's OutputID is its sha256) and Go's ActionID maps to it
            through the ActionCache under `sha256("k4s-gocache-v1:" + ActionID)`. So a
            machine whose GOCACHE is cold (a new CI runner, a colleague's laptop, a
            remote executor) recompiles only the packages nobody compiled before,
            even when the compile step itself is a cache miss (a changed command
            list, tag or first-party source). Go's ActionIDs cover compiler, flags and
            every input, so outputs are byte-identical with and without it. A miss or
            an error of the remote never fails a build (the first error is logged
            once, then the local cache alone is used). No credentials are sent: the
            address is part of the rewrite and compile steps' env, hence of their
            cache key (machines sharing a Pants remote cache should use the same
            value), and Pants sends that key to its remote cache; use a cache that
            needs no token (a private network, or mTLS terminated in front of it).
            Off by default: Pants' own `remote_store_address` usually carries
            `remote_store_headers`/token files that cannot be passed this way. See
            docs/shared-build-cache.md for figures.
            """
        ),
        advanced=True,
    )

    shared_build_cache_instance_name = StrOption(
        default="",
        help="The REAPI instance name of `shared_build_cache` (empty: the server's default instance).",
        advanced=True,
    )
