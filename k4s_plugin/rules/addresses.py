"""Addresses named in fields (`busybox`, `images`): parsed relative to the target."""

from __future__ import annotations

from pants.engine.addresses import Address, AddressInput
from pants.engine.rules import Get


async def field_address(field, value: str) -> Address:
    """The address `value` (one entry of `field`, an AsyncFieldMixin) names."""
    return await Get(
        Address,
        AddressInput,
        AddressInput.parse(
            value,
            relative_to=field.address.spec_path,
            description_of_origin=f"the `{field.alias}` field of {field.address}",
        ),
    )
