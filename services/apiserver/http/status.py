"""API errors as Kubernetes' `kind: Status` bodies (reason, code, details with field causes).

kubectl and the official clients read `reason` and `message` from it (`Error from server (NotFound): ...`).
"""

from __future__ import annotations

from typing import Any

from pybernetes import errors


def failure(e: errors.ApiError, *, kind: str = "", name: str = "", group: str = "") -> dict[str, Any]:
    """The Status for `e`; kind/name/group fill details the error itself does not carry."""
    details: dict[str, Any] = {}
    if e.name or name:
        details["name"] = e.name or name
    if group:
        details["group"] = group
    if e.kind or kind:
        details["kind"] = e.kind or kind
    if e.retry_after_seconds:
        details["retryAfterSeconds"] = e.retry_after_seconds
    if e.causes:
        details["causes"] = [{"reason": c.reason, "message": c.message, "field": c.path} for c in e.causes]
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": e.message, "reason": e.reason, "code": e.code}
    if details:
        body["details"] = details
    return body


def success(*, kind: str, name: str, group: str = "", uid: str = "") -> dict[str, Any]:
    """What a DELETE returns when the object is gone at once."""
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
