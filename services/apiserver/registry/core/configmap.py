"""ConfigMaps: validation of keys and size, and immutability (shared with secrets)."""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.core.secret import MAX_SECRET_SIZE, validate_immutable_data
from services.apiserver.registry.field import Errs, key
from services.apiserver.registry.formats import is_config_map_key
from services.apiserver.registry.kindstrategy import KindStrategy


def validate(cm: core.ConfigMap, errs: Errs) -> None:
    total = 0
    for k in sorted(cm.data):
        errs.invalid_each(key("data", k), k, is_config_map_key(k))
        if k in cm.binary_data:
            errs.invalid(key("data", k), k, "duplicate of key present in binaryData")
        total += len(cm.data[k].encode())
    for k in sorted(cm.binary_data):
        errs.invalid_each(key("binaryData", k), k, is_config_map_key(k))
        total += len(cm.binary_data[k])
    if total > MAX_SECRET_SIZE:
        errs.too_long("", MAX_SECRET_SIZE)


STRATEGY = KindStrategy(core.ConfigMap, validate=validate, validate_update=validate_immutable_data)
