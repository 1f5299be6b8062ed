"""LimitRanges: validation of the items (Kubernetes' ValidateLimitRange).

Each item names a type (Container, Pod, PersistentVolumeClaim) and quantities by resource; where several are
given for one resource they must be ordered min <= defaultRequest <= default <= max, and a
maxLimitRequestRatio is at least 1. The LimitRanger admission plugin (services/apiserver/admission) applies them.
"""

from __future__ import annotations

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, child, index, key
from services.apiserver.registry.kindstrategy import KindStrategy
from services.apiserver.registry.quantities import resource_list

LIMIT_TYPES = ("Container", "PersistentVolumeClaim", "Pod")


def _validate_item(item: core.LimitRangeItem, path: str, errs: Errs) -> None:
    if not item.type:
        errs.required(child(path, "type"))
    elif item.type not in LIMIT_TYPES:
        errs.not_supported(child(path, "type"), item.type, LIMIT_TYPES)
    mx = resource_list(item.max, child(path, "max"), errs)
    mn = resource_list(item.min, child(path, "min"), errs)
    default = resource_list(item.default, child(path, "default"), errs)
    default_request = resource_list(item.default_request, child(path, "defaultRequest"), errs)
    ratio = resource_list(item.max_limit_request_ratio, child(path, "maxLimitRequestRatio"), errs)
    if item.type == "Pod":
        if default:
            errs.forbidden(child(path, "default"), "may not be specified when `type` is 'Pod'")
        if default_request:
            errs.forbidden(child(path, "defaultRequest"), "may not be specified when `type` is 'Pod'")
    texts = {"max": item.max, "min": item.min, "default": item.default,
             "defaultRequest": item.default_request}
    for name in sorted(set(mx) | set(mn) | set(default) | set(default_request)):
        def q(field: str, name: str = name) -> str:
            return str(texts[field][name].string)
        if name in mn and name in mx and mn[name] > mx[name]:
            errs.invalid(key(child(path, "min"), name), q("min"),
                         f"min value {q('min')} is greater than max value {q('max')}")
        if name in default_request and name in mn and mn[name] > default_request[name]:
            errs.invalid(key(child(path, "defaultRequest"), name), q("defaultRequest"),
                         f"min value {q('min')} is greater than default request value {q('defaultRequest')}")
        if name in default_request and name in mx and default_request[name] > mx[name]:
            errs.invalid(key(child(path, "defaultRequest"), name), q("defaultRequest"),
                         f"default request value {q('defaultRequest')} is greater than max value {q('max')}")
        if name in default_request and name in default and default_request[name] > default[name]:
            errs.invalid(key(child(path, "defaultRequest"), name), q("defaultRequest"),
                         f"default request value {q('defaultRequest')} is greater than default limit value "
                         f"{q('default')}")
        if name in default and name in mn and mn[name] > default[name]:
            errs.invalid(key(child(path, "default"), name), q("default"),
                         f"min value {q('min')} is greater than default value {q('default')}")
        if name in default and name in mx and default[name] > mx[name]:
            errs.invalid(key(child(path, "default"), name), q("default"),
                         f"default value {q('default')} is greater than max value {q('max')}")
    for name, r in ratio.items():
        if r < 1:
            text = item.max_limit_request_ratio[name].string
            errs.invalid(key(child(path, "maxLimitRequestRatio"), name), text, f"ratio {text} is less than 1")


def validate(lr: core.LimitRange, errs: Errs) -> None:
    for i, item in enumerate(lr.spec.limits):
        _validate_item(item, index("spec.limits", i), errs)


def default(lr: core.LimitRange) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit falls back to max, its default request to
    the default limit, then to min."""
    for item in lr.spec.limits:
        if item.type != "Container":
            continue
        dflt = item.default
        for n, q in item.max.items():
            if n not in dflt:
                dflt[n].CopyFrom(q)
        for n, q in dflt.items():
            if n not in item.default_request:
                item.default_request[n].CopyFrom(q)
        for n, q in item.min.items():
            if n not in item.default_request:
                item.default_request[n].CopyFrom(q)


STRATEGY = KindStrategy(core.LimitRange, default=default, validate=validate)
