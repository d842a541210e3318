"""Options of k4s: how the Go toolchain is run inside sandboxes."""

from __future__ import annotations

from pants.option.option_types import StrListOption
from pants.option.subsystem import Subsystem
from pants.util.strutil import softwrap


class K4sGo(Subsystem):
    options_scope = "k4s-go"
    help = softwrap(
        """
        How k4s runs the Go SDK in its sandboxed steps. The `go` binary itself is found
        with Pants' Go SDK lookup: see `[golang].go_search_paths` (default: `<PATH>`) and
        `[golang].minimum_expected_version`.
        """
    )

    env_vars = StrListOption(
        default=["GOPROXY", "GOSUMDB", "GONOSUMDB", "GOPRIVATE", "GONOPROXY", "GOFLAGS", "GOINSECURE"],
        help=softwrap(
            """
            Environment variables passed from Pants' environment into the sandboxes that
            run the go command. `NAME` passes the variable if set; `NAME=value` sets it.
            They are part of each step's cache key. Nothing else of the host
            environment (GOPATH, HOME, ~/go, GOENV files) is visible to a step.
            """
        ),
        advanced=True,
    )
