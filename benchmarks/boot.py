#!/usr/bin/env python3
"""Boot-to-shell time of built images under QEMU (TCG), as a table.

    .k4s/venv/bin/python benchmarks/boot.py [image.cpio ...]

Default images: the profiles' `initramfs` targets that `dist/` already holds (build them
with `./pants package distros/<profile>:initramfs`), but kubesolo-like's (see below). Each boots with the kernel
`pants package` wrote beside it (its `linux_kernel`) on 2 vCPUs and 4 GiB; the time is from QEMU's start to the first
prompt of u-root's gosh (its key help line) on the serial console; then it powers off.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.qemu import image_kernel, qemu_argv  # noqa: E402

# gosh's line editor draws "> " and then its key help line, once it waits for input.
PROMPT = b"toggle key help"
TIMEOUT_S = 300


def boot_to_shell(image: Path) -> float:
    start = time.monotonic()
    vm = subprocess.Popen(
        qemu_argv(image, memory=4096, cpus=2, append="quiet"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    seen = b""
    try:
        while time.monotonic() - start < TIMEOUT_S:
            ready, _, _ = select.select([vm.stdout], [], [], 1)
            if ready:
                chunk = os.read(vm.stdout.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
                if PROMPT in seen[-200:]:
                    elapsed = time.monotonic() - start
                    vm.stdin.write(b"poweroff\n")
                    vm.stdin.flush()
                    vm.wait(timeout=60)
                    return elapsed
        raise SystemExit(f"{image}: no shell prompt after {TIMEOUT_S} s:\n{seen[-2000:].decode(errors='replace')}")
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()


def main() -> None:
    # kubesolo-like's uinit is the node supervisor, which never returns to a shell:
    # tests/test_appliance.py times that image to /readyz, Ready and a pod.
    images = [Path(a) for a in sys.argv[1:]] or sorted(
        p for p in REPO.glob("dist/distros.*/initramfs.cpio") if "kubesolo" not in str(p)
    )
    print(f"kernel {image_kernel(images[0]) if images else '-'}, QEMU TCG, 2 vCPUs, 4 GiB\n\n| image | bytes | boot to shell |\n| --- | ---: | ---: |")
    for image in images:
        secs = boot_to_shell(image)
        print(f"| {image.relative_to(REPO) if image.is_relative_to(REPO) else image} | {image.stat().st_size:,} | {secs:.1f} s |")


if __name__ == "__main__":
    main()
