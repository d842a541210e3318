"""One picker for this machine's kernel (k4s_plugin/rules/kernel.py): `pants run` boots
the kernel whose modules the image carries."""

from __future__ import annotations

from k4s_plugin.rules.kernel import HostKernel, pick


def test_newest_version_by_version_order_with_its_image_and_modules() -> None:
    paths = [
        "/boot/vmlinuz-6.1.0-9-amd64", "/lib/modules/6.1.0-9-amd64/modules.dep",
        "/boot/vmlinuz-6.1.0-10-amd64", "/lib/modules/6.1.0-10-amd64/modules.dep",
    ]
    assert pick(paths) == HostKernel(
        "6.1.0-10-amd64", "/boot/vmlinuz-6.1.0-10-amd64", "/lib/modules/6.1.0-10-amd64"
    )


def test_the_newest_kernel_lacking_a_part_is_reported_not_replaced() -> None:
    # Modules of a newer kernel whose image is missing: not silently the older image
    # (whose modules would not be the ones the image carries).
    paths = ["/boot/vmlinuz-6.1.0-9-amd64", "/lib/modules/6.1.0-9-amd64/modules.dep",
             "/lib/modules/6.12.0-1-amd64/modules.dep"]
    assert pick(paths) == HostKernel("6.12.0-1-amd64", None, "/lib/modules/6.12.0-1-amd64")
    assert pick(["/boot/vmlinuz-6.1.0-9-amd64"]) == HostKernel("6.1.0-9-amd64", "/boot/vmlinuz-6.1.0-9-amd64", None)
    assert pick([]) is None
