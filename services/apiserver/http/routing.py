"""Kubernetes resource URLs -> what they name: group/version, namespace, resource, name, subresource.

/api/v1/pods, /api/v1/namespaces/NS/pods/NAME/status, /apis/apps/v1/namespaces/NS/deployments,
/api/v1/nodes/NAME, /api/v1/namespaces/NAME (the namespace itself; NAME/status and NAME/finalize are its
subresources), as kube-apiserver's RequestInfo reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.kinds import ResourceInfo

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclass(frozen=True)
class Target:
    info: ResourceInfo
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def _not_found() -> errors.NotFound:
    return errors.NotFound("the server could not find the requested resource")


def parse(group: str, version: str, tail: str) -> Target:
    parts = [p for p in tail.split("/") if p]
    namespace = ""
    if parts and parts[0] == "namespaces" and len(parts) > 2 and parts[2] not in NAMESPACE_SUBRESOURCES:
        namespace, parts = parts[1], parts[2:]
    if not parts or len(parts) > 3:
        raise _not_found()
    info = kinds.for_plural(parts[0])
    if info is None or info.group != group or info.version != version:
        raise _not_found()
    if namespace and not info.namespaced:
        raise _not_found()
    name = parts[1] if len(parts) > 1 else ""
    sub = parts[2] if len(parts) > 2 else ""
    return Target(info, namespace, name, sub)
