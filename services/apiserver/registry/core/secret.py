"""Secrets: validation (keys, size, what each secret type requires), immutability (shared with configmaps),
defaults (type Opaque, stringData merged into data) and field selectors."""

from __future__ import annotations

import json

from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, key
from services.apiserver.registry.formats import is_config_map_key
from services.apiserver.registry.kindstrategy import KindStrategy, meta_fields

MAX_SECRET_SIZE = 1024 * 1024


def validate_immutable_data(new: core.ConfigMap | core.Secret, old: core.ConfigMap | core.Secret,
                            errs: Errs) -> None:
    if old.HasField("immutable") and old.immutable:
        if not new.immutable:
            errs.forbidden("immutable", "field is immutable when `immutable` is set")
        if dict(new.data) != dict(old.data):
            errs.forbidden("data", "field is immutable when `immutable` is set")
        if isinstance(new, core.ConfigMap) and isinstance(old, core.ConfigMap) \
                and dict(new.binary_data) != dict(old.binary_data):
            errs.forbidden("binaryData", "field is immutable when `immutable` is set")


def validate(s: core.Secret, errs: Errs) -> None:
    total = 0
    for k in sorted(s.data):
        errs.invalid_each(key("data", k), k, is_config_map_key(k))
        total += len(s.data[k])
    if total > MAX_SECRET_SIZE:
        errs.too_long("data", MAX_SECRET_SIZE)
    if s.type == "kubernetes.io/service-account-token":
        if not s.metadata.annotations.get("kubernetes.io/service-account.name"):
            errs.required("metadata.annotations[kubernetes.io/service-account.name]")
    elif s.type == "kubernetes.io/dockerconfigjson":
        if ".dockerconfigjson" not in s.data:
            errs.required("data[.dockerconfigjson]")
        else:
            try:
                if not isinstance(json.loads(s.data[".dockerconfigjson"]), dict):
                    raise ValueError("json: cannot unmarshal into Go value of type map[string]interface {}")
            except ValueError as e:
                errs.invalid("data[.dockerconfigjson]", "<secret contents redacted>", str(e))
    elif s.type == "kubernetes.io/tls":
        for k in ("tls.crt", "tls.key"):
            if k not in s.data:
                errs.required(key("data", k))
    elif s.type == "kubernetes.io/basic-auth":
        if "username" not in s.data and "password" not in s.data:
            errs.required("data[username]", "either username or password is required to use basic authentication")
    elif s.type == "kubernetes.io/ssh-auth" and "ssh-privatekey" not in s.data:
        errs.required("data[ssh-privatekey]")


def validate_update(new: core.Secret, old: core.Secret, errs: Errs) -> None:
    errs.immutable("type", new.type, old.type)
    validate_immutable_data(new, old, errs)


def default(s: core.Secret) -> None:
    if not s.type:
        s.type = "Opaque"
    # stringData is write-only: merged into data (winning over it), then dropped.
    for k, v in s.string_data.items():
        s.data[k] = v.encode()
    s.ClearField("string_data")


def fields(s: core.Secret) -> dict[str, str]:
    return {**meta_fields(s), "type": s.type}


STRATEGY = KindStrategy(core.Secret, default=default, validate=validate, validate_update=validate_update,
                        fields=fields)
