"""What the server serves, as Kubernetes clients discover it, all derived from pybernetes.api.kinds.

Legacy discovery (/api, /apis, /api/v1, /apis/{group}/{version}), the aggregated discovery documents kubectl
asks for first (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList`) and
/version. The OpenAPI documents are openapi.py's.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

from pybernetes.api import kinds
from pybernetes.api.kinds import ResourceInfo

KUBERNETES_VERSION = (1, 33)  # the API level served: kubectl within one minor version is in supported skew
GIT_VERSION = f"v{KUBERNETES_VERSION[0]}.{KUBERNETES_VERSION[1]}.0+pybernetes"
AGGREGATED_VERSIONS = ("v2", "v2beta1")
AGGREGATED_KIND = "APIGroupDiscoveryList"

# What the HTTP front door serves per subresource (response kind: "" is the parent's, "group/version/Kind" one of
# another group; verbs), as kube-apiserver lists them.
SUBRESOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "status": ("", ("get", "patch", "update")),
    "binding": ("Binding", ("create",)),
    "scale": ("autoscaling/v1/Scale", ("get", "patch", "update")),
    "eviction": ("policy/v1/Eviction", ("create",)),
    "token": ("authentication.k8s.io/v1/TokenRequest", ("create",)),
    "log": ("Pod", ("get",)),
    "exec": ("PodExecOptions", ("create", "get")),
    "attach": ("PodAttachOptions", ("create", "get")),
    "portforward": ("PodPortForwardOptions", ("create", "get")),
}


def version() -> dict[str, str]:
    return {"major": str(KUBERNETES_VERSION[0]), "minor": str(KUBERNETES_VERSION[1]), "gitVersion": GIT_VERSION,
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": f"python{sys.version_info[0]}.{sys.version_info[1]}",
            "compiler": platform.python_implementation().lower(),
            "platform": f"{platform.system().lower()}/{_arch()}"}


def _arch() -> str:
    m = platform.machine().lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def group_versions() -> dict[str, list[str]]:
    """group -> versions served ("" is the core group), in registry order."""
    out: dict[str, list[str]] = {}
    for r in kinds.RESOURCES:
        vs = out.setdefault(r.group, [])
        if r.version not in vs:
            vs.append(r.version)
    return out


def resources_in(group: str, version: str) -> list[ResourceInfo]:
    return [r for r in kinds.RESOURCES if r.group == group and r.version == version]


def _subresources(info: ResourceInfo) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    """(subresource, group, version, kind, verbs) of each subresource `info` has."""
    out = []
    for name, (kind, verbs) in SUBRESOURCES.items():
        if name in info.subresources:
            group, version = info.group, info.version
            if kind.count("/") == 2:
                group, version, kind = kind.split("/")
            out.append((name, group, version, kind or info.kind, verbs))
    return out


# -- legacy discovery ------------------------------------------------------------------------------

def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": group_versions().get("", []),
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> dict[str, Any]:
    groups = [_group(g, vs) for g, vs in group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict[str, Any] | None:
    vs = group_versions().get(name)
    if not name or vs is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, vs)}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    infos = resources_in(group, version)
    if not infos:
        return None
    out: list[dict[str, Any]] = []
    for r in infos:
        item: dict[str, Any] = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                                "kind": r.kind, "verbs": list(r.verbs)}
        if r.short_names:
            item["shortNames"] = list(r.short_names)
        if r.categories:
            item["categories"] = list(r.categories)
        out.append(item)
        for sub, g, v, kind, verbs in _subresources(r):
            sub_item: dict[str, Any] = {"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                        "kind": kind, "verbs": list(verbs)}
            if (g, v) != (r.group, r.version):
                sub_item.update(group=g, version=v)
            out.append(sub_item)
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": out}


# -- aggregated discovery --------------------------------------------------------------------------

def aggregated_version(accept: str) -> str | None:
    """The apidiscovery.k8s.io version the client accepts, first match in its order; None for legacy."""
    for part in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in part.split(";")[1:])
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == AGGREGATED_KIND:
            if params.get("v") in AGGREGATED_VERSIONS:
                return params["v"]
    return None


def aggregated_content_type(version: str) -> str:
    return f"application/json;g=apidiscovery.k8s.io;v={version};as={AGGREGATED_KIND}"


def _resource_discovery(r: ResourceInfo) -> dict[str, Any]:
    item: dict[str, Any] = {
        "resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
        "verbs": list(r.verbs)}
    if r.short_names:
        item["shortNames"] = list(r.short_names)
    if r.categories:
        item["categories"] = list(r.categories)
    subs = [{"subresource": sub, "responseKind": {"group": g, "version": v, "kind": kind},
             "verbs": list(verbs)} for sub, g, v, kind, verbs in _subresources(r)]
    if subs:
        item["subresources"] = subs
    return item


def aggregated(core: bool, version: str) -> dict[str, Any]:
    """The APIGroupDiscoveryList for /api (core=True) or /apis."""
    items: list[dict[str, Any]] = []
    for g, vs in group_versions().items():
        if bool(g) == core:
            continue
        versions = [{"version": v, "resources": [_resource_discovery(r) for r in resources_in(g, v)],
                     "freshness": "Current"} for v in vs]
        items.append({"metadata": {"name": g, "creationTimestamp": None} if g else {"creationTimestamp": None},
                      "versions": versions})
    return {"kind": AGGREGATED_KIND, "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}
