"""Server-side field validation of request bodies: the `fieldValidation` query parameter.

Strict: an unknown or duplicate field is a 400 BadRequest `strict decoding error: unknown field "spec.foo"`, as
kube-apiserver answers (kubectl sends Strict unless `--validate=false`). Warn (the default, as in Kubernetes):
the object is accepted without those fields and each one is reported in a `Warning` response header. Ignore:
they are dropped silently. Type errors stay errors whatever the mode (Invalid, naming the field).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from aiohttp import web
from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api import codec, k8swire
from pybernetes.api.kinds import ResourceInfo

MODES = ("Ignore", "Strict", "Warn")
WARNINGS_KEY = web.RequestKey("pybernetes.warnings", list[str])


def mode(request: web.Request) -> str:
    m = request.query.get("fieldValidation", "") or "Warn"
    if m not in MODES:
        raise errors.BadRequest(f'fieldValidation: Unsupported value: "{m}": supported values: '
                                '"Ignore", "Strict", "Warn"')
    return m


def _pairs(duplicates: list[str]) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                duplicates.append(k)
            out[k] = v
        return out
    return hook


PROTOBUF = k8swire.CONTENT_TYPE


def load(raw: bytes, content_type: str, duplicates: list[str]) -> Any:
    """The JSON or YAML document of a body; duplicate JSON keys are appended to `duplicates`."""
    if content_type == PROTOBUF:
        # client-go's typed clients (kubectl's `create deployment`) send k8s.io/api's protobuf: read with
        # that schema into the same dict a JSON body gives.
        try:
            return k8swire.decode(raw)
        except k8swire.WireError as e:
            raise errors.BadRequest(f"the request body is not a valid Kubernetes protobuf object: {e}") from None
    try:
        if "yaml" in content_type:
            return next(iter(codec.yaml_load_all(raw.decode())), None)  # timestamps stay strings
        return json.loads(raw or b"null", object_pairs_hook=_pairs(duplicates))
    # UnicodeDecodeError is a ValueError; RecursionError: a body nested deeper than the parser's stack.
    except (ValueError, RecursionError, yaml.YAMLError) as e:
        raise errors.BadRequest(f"the request body is not valid {'YAML' if 'yaml' in content_type else 'JSON'}: "
                                f"{e}") from None


def warn(request: web.Request, messages: list[str]) -> None:
    """Queue `Warning` headers for the response (app.py adds them), each message once: a write retried (a
    Conflict, a stale cache copy) checks its fields again, and kube-apiserver's recorder drops repeats too."""
    if WARNINGS_KEY not in request:
        request[WARNINGS_KEY] = []
    queued = request[WARNINGS_KEY]
    queued.extend(m for m in dict.fromkeys(messages) if m not in queued)


def headers(request: web.Request) -> list[str]:
    """The Warning header values queued for this request (RFC 7234 form, as kube-apiserver sends them)."""
    return ["299 - " + json.dumps(m) for m in (request[WARNINGS_KEY] if WARNINGS_KEY in request else [])]


def check_unknown(request: web.Request, info: ResourceInfo, unknown: list[str],
                  duplicates: list[str] | None = None) -> None:
    """Refuse (Strict) or report (Warn) unknown and duplicate fields; Ignore drops them quietly."""
    problems = [f'unknown field "{p}"' for p in unknown] + [f'duplicate field "{d}"' for d in duplicates or []]
    m = mode(request)
    if problems and m == "Strict":
        raise errors.BadRequest(f'{info.kind} in version "{info.version}" cannot be handled as a {info.kind}: '
                                f"strict decoding error: {', '.join(problems)}")
    if problems and m == "Warn":
        warn(request, problems)


def decode(request: web.Request, data: dict[str, Any], info: ResourceInfo,
           duplicates: list[str]) -> tuple[Message, list[str]]:
    """The message of `data` under the request's fieldValidation mode, and the unknown fields it dropped."""
    mode(request)  # a bad value is refused before the body is looked at
    unknown: list[str] = []
    name = ""
    md = data.get("metadata")
    if isinstance(md, dict):
        name = str(md.get("name") or "")
    try:
        msg = codec.from_dict(data, info.cls, unknown=unknown)
    except errors.Invalid as e:
        raise errors.Invalid(f'{info.kind} "{name}" is invalid: {e.message}', causes=e.causes, kind=info.kind,
                             name=name) from None
    check_unknown(request, info, unknown, duplicates)
    return msg, unknown
