"""Addresses named in fields (`busybox`, `images`, `local_modules`, `kernel`): parsed
relative to the target."""

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


async def field_addresses(field) -> tuple[Address, ...]:
    """Every address `field` (an AsyncFieldMixin holding one address or a sequence of
    them) names, in order; none when it is unset."""
    value = field.value
    values = () if not value else (value,) if isinstance(value, str) else tuple(value)
    return tuple([await field_address(field, v) for v in values])
