"""Resource amounts in specs (Kubernetes' ValidateResourceQuantityValue and ValidateNonnegativeQuantity): an
amount is a quantity not below zero; a resource list's names are qualified names as well. Used by containers'
resources (containers.py), LimitRanges and ResourceQuotas (core/).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pybernetes.api import quantity
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.apiserver.registry.field import Errs, key
from services.apiserver.registry.formats import is_qualified_name


def amount(text: str, path: str, errs: Errs) -> Decimal | None:
    """The quantity `text` at `path`: None when it does not parse; a negative one is returned, its error filed."""
    try:
        value = quantity.parse(text)
    except quantity.QuantityError as e:
        errs.invalid(path, text, str(e))
        return None
    if value < 0:
        errs.invalid(path, text, "must be greater than or equal to 0")
    return value


def resource_list(bag: Mapping[str, meta.Quantity], path: str, errs: Errs) -> dict[str, Decimal]:
    """A resource list (name -> quantity) checked: its names and amounts; the amounts that parse, by name."""
    out: dict[str, Decimal] = {}
    for name in sorted(bag):
        p = key(path, name)
        errs.invalid_each(p, name, is_qualified_name(name))
        value = amount(bag[name].string, p, errs)
        if value is not None:
            out[name] = value
    return out
