"""Dependency inference for the k4s target types, in one place (as Pants' Go backend
keeps all of its inference in one module): the fields that name other targets are
dependencies, so `pants dependencies`, `--changed-since` and `peek` see them.

- `go_busybox`: `local_modules` (the `files` targets of first-party modules);
- `initramfs`: `busybox` and `images`;
- `oci_image`: `busybox`.

Each target type has a FieldSet of its address fields and an `InferDependenciesRequest`
(Pants registers inference per request class); all of them resolve the addresses the
same way, `field_addresses` (addresses.py), which the build rules use too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pants.engine.rules import collect_rules, rule
from pants.engine.target import FieldSet, InferDependenciesRequest, InferredDependencies
from pants.engine.unions import UnionRule

from k4s_plugin.rules.addresses import field_addresses
from k4s_plugin.targets import (
    GoBusyboxLocalModulesField,
    InitramfsBusyboxField,
    InitramfsImagesField,
    OciImageBusyboxField,
)


@dataclass(frozen=True)
class _AddressFields(FieldSet):
    """A target type's fields that name other targets: every dataclass field of a subclass."""


async def _inferred(field_set: _AddressFields) -> InferredDependencies:
    """The targets a FieldSet's address fields name: the one inference of k4s."""
    found: list = []
    for f in dataclasses.fields(field_set):
        if f.name != "address":
            found += await field_addresses(getattr(field_set, f.name))
    return InferredDependencies(found)


@dataclass(frozen=True)
class GoBusyboxAddressFields(_AddressFields):
    required_fields = (GoBusyboxLocalModulesField,)

    local_modules: GoBusyboxLocalModulesField


@dataclass(frozen=True)
class InitramfsAddressFields(_AddressFields):
    required_fields = (InitramfsBusyboxField,)

    busybox: InitramfsBusyboxField
    images: InitramfsImagesField


@dataclass(frozen=True)
class OciImageAddressFields(_AddressFields):
    required_fields = (OciImageBusyboxField,)

    busybox: OciImageBusyboxField


class InferGoBusyboxDependencies(InferDependenciesRequest):
    infer_from = GoBusyboxAddressFields


class InferInitramfsDependencies(InferDependenciesRequest):
    infer_from = InitramfsAddressFields


class InferOciImageDependencies(InferDependenciesRequest):
    infer_from = OciImageAddressFields


@rule(desc="Infer the local module dependencies of a go_busybox")
async def infer_go_busybox(request: InferGoBusyboxDependencies) -> InferredDependencies:
    return await _inferred(request.field_set)


@rule(desc="Infer the go_busybox and image dependencies of an initramfs")
async def infer_initramfs(request: InferInitramfsDependencies) -> InferredDependencies:
    return await _inferred(request.field_set)


@rule(desc="Infer the go_busybox dependency of an oci_image")
async def infer_oci_image(request: InferOciImageDependencies) -> InferredDependencies:
    return await _inferred(request.field_set)


def rules():
    return (
        *collect_rules(),
        UnionRule(InferDependenciesRequest, InferGoBusyboxDependencies),
        UnionRule(InferDependenciesRequest, InferInitramfsDependencies),
        UnionRule(InferDependenciesRequest, InferOciImageDependencies),
    )
