"""Kubernetes' protobuf bodies for the kinds whose pybernetes messages keep Kubernetes' field numbers (RBAC and
the reviews: kubectl creates RBAC objects and asks `auth can-i` / `auth whoami` in protobuf): their object bytes
pass through the envelope (pybernetes.api.k8swire's runtime.Unknown) as they are, both ways.
"""

from __future__ import annotations

from pybernetes import errors
from pybernetes.api import k8swire

CONTENT_TYPE = k8swire.CONTENT_TYPE
KINDS = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings", "selfsubjectreviews",
                   "selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews"})


def unwrap(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw object bytes) of a Kubernetes protobuf body."""
    if not body.startswith(k8swire.MAGIC):
        raise errors.BadRequest("a Kubernetes protobuf body starts with k8s\\x00")
    try:
        api_version, kind, raw, _ = k8swire.unwrap(body)
    except k8swire.WireError as e:
        raise errors.BadRequest(f"cannot decode the Kubernetes protobuf body: {e}") from None
    return api_version, kind, raw


def wrap(api_version: str, kind: str, raw: bytes) -> bytes:
    return k8swire.wrap(api_version, kind, raw)
