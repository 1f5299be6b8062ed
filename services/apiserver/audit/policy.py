"""The audit Policy (audit.k8s.io/v1, --audit-policy-file): which requests are logged, at what level, and
which stages are left out. The first rule that matches a request decides; none matching is level None, as
kube-apiserver's policy checker (staging/src/k8s.io/apiserver/pkg/audit/policy/checker.go) decides.

`LAB_POLICY` is what `pbctl lab up` writes: health, event and lease traffic not logged, Secrets, ConfigMaps
and token reviews at Metadata only (never their contents, as Kubernetes recommends), reads and the components'
writes at Metadata, other writes (people's) at Request.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pybernetes import errors

from ..authz import Attributes

API_VERSION = "audit.k8s.io/v1"
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


class Level(enum.IntEnum):
    NONE = 0
    METADATA = 1
    REQUEST = 2
    REQUEST_RESPONSE = 3

    @property
    def wire(self) -> str:
        return _WIRE[self]

    @classmethod
    def parse(cls, path: str, value: Any) -> Level:
        for lv, name in _WIRE.items():
            if value == name:
                return lv
        raise errors.ConfigError(f"{path}: unknown level {value!r} (None, Metadata, Request, RequestResponse)")


_WIRE = {Level.NONE: "None", Level.METADATA: "Metadata", Level.REQUEST: "Request",
         Level.REQUEST_RESPONSE: "RequestResponse"}


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, a: Attributes) -> bool:
        if a.api_group != self.group:
            return False
        if not self.resources:
            return True
        if self.resource_names and a.name not in self.resource_names:
            return False
        combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        for r in self.resources:
            if r in (combined, "*"):
                return True
            if a.subresource and r.startswith("*/") and r[2:] == a.subresource:
                return True
            if r.endswith("/*") and r[:-2] == a.resource:
                return True
        return False


def _path_matches(path: str, spec: str) -> bool:
    return spec in ("*", path) or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


@dataclass(frozen=True)
class Rule:
    level: Level
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()

    def matches(self, a: Attributes, authenticated: bool = True) -> bool:
        """Does this rule apply? `authenticated` False: the request has no user (a 401), so rules naming
        users or groups do not match it."""
        if self.users and (not authenticated or a.user.name not in self.users):
            return False
        if self.user_groups and (not authenticated or not set(a.user.groups) & set(self.user_groups)):
            return False
        if self.verbs and a.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            if not a.is_resource_request:
                return False
            if self.namespaces and a.namespace not in self.namespaces:
                return False
            return not self.resources or any(gr.matches(a) for gr in self.resources)
        if self.non_resource_urls:
            return not a.is_resource_request and any(_path_matches(a.path, s) for s in self.non_resource_urls)
        return True


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    omit_stages: frozenset[str] = field(default_factory=frozenset)

    def evaluate(self, a: Attributes, authenticated: bool = True) -> tuple[Level, frozenset[str]]:
        """(level, stages not to log) for a request: the first matching rule's."""
        for r in self.rules:
            if r.matches(a, authenticated):
                return r.level, r.omit_stages | self.omit_stages
        return Level.NONE, self.omit_stages


# Every request at Metadata: what --audit-log-path without --audit-policy-file logs (kube-apiserver would
# log nothing; a log asked for should not stay empty).
METADATA_POLICY = Policy((Rule(Level.METADATA),))


def _strings(path: str, v: Any) -> tuple[str, ...]:
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise errors.ConfigError(f"{path}: a list of strings is required")
    return tuple(v)


def _stages(path: str, v: Any) -> frozenset[str]:
    out = _strings(path, v)
    for i, s in enumerate(out):
        if s not in STAGES:
            raise errors.ConfigError(f"{path}[{i}]: unknown stage {s!r} ({', '.join(STAGES)})")
    return frozenset(out)


def _rule(path: str, r: Any) -> Rule:
    if not isinstance(r, dict):
        raise errors.ConfigError(f"{path}: a rule must be a mapping")
    known = {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs", "omitStages",
             "omitManagedFields"}
    for k in r:
        if k not in known:
            raise errors.ConfigError(f"{path}.{k}: unknown field")
    if "level" not in r:
        raise errors.ConfigError(f"{path}.level: required")
    res = []
    for i, gr in enumerate(r.get("resources") or []):
        gp = f"{path}.resources[{i}]"
        if not isinstance(gr, dict):
            raise errors.ConfigError(f"{gp}: a mapping of group, resources, resourceNames is required")
        group = gr.get("group", "")
        if not isinstance(group, str):
            raise errors.ConfigError(f"{gp}.group: a string is required")
        res.append(GroupResources(group, _strings(f"{gp}.resources", gr.get("resources")),
                                  _strings(f"{gp}.resourceNames", gr.get("resourceNames"))))
    rule = Rule(Level.parse(f"{path}.level", r["level"]), _strings(f"{path}.users", r.get("users")),
                _strings(f"{path}.userGroups", r.get("userGroups")), _strings(f"{path}.verbs", r.get("verbs")),
                tuple(res), _strings(f"{path}.namespaces", r.get("namespaces")),
                _strings(f"{path}.nonResourceURLs", r.get("nonResourceURLs")),
                _stages(f"{path}.omitStages", r.get("omitStages")))
    if rule.non_resource_urls and (rule.resources or rule.namespaces):
        raise errors.ConfigError(f"{path}: rules cannot apply to both regular resources and non-resource URLs")
    return rule


def parse(doc: Any, source: str = "Policy") -> Policy:
    if not isinstance(doc, dict) or doc.get("kind") != "Policy" or doc.get("apiVersion") != API_VERSION:
        raise errors.ConfigError(f"{source}: expected kind Policy, apiVersion {API_VERSION}")
    rules = doc.get("rules")
    if not isinstance(rules, list) or not rules:
        raise errors.ConfigError(f"{source}: rules: at least one rule is required")
    return Policy(tuple(_rule(f"{source}: rules[{i}]", r) for i, r in enumerate(rules)),
                  _stages(f"{source}: omitStages", doc.get("omitStages")))


def load(path: Path) -> Policy:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as e:
        raise errors.ConfigError(f"--audit-policy-file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise errors.ConfigError(f"--audit-policy-file {path}: not YAML: {e}") from None
    return parse(doc, str(path))


LAB_POLICY: dict[str, Any] = {
    "apiVersion": API_VERSION, "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version"]},
        {"level": "None", "resources": [{"group": "", "resources": ["events"]},
                                        {"group": "events.k8s.io", "resources": ["events"]}]},
        {"level": "None", "verbs": ["get", "update", "patch"],  # heartbeats and leader election
         "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        # Never the contents of Secrets, ConfigMaps or token reviews: who touched them is enough.
        {"level": "Metadata", "resources": [{"group": "", "resources": ["secrets", "configmaps",
                                                                        "serviceaccounts/token"]},
                                            {"group": "authentication.k8s.io", "resources": ["tokenreviews"]}]},
        {"level": "Metadata", "verbs": ["get", "list", "watch"]},
        # The components' own writes (status updates, mostly) by who and what, not their bodies: cheap enough
        # for a lab under load; people's writes with what they sent.
        {"level": "Metadata", "userGroups": ["system:nodes", "system:serviceaccounts"]},
        {"level": "Metadata", "users": ["system:kube-scheduler", "system:kube-controller-manager",
                                        "system:kube-proxy"]},
        {"level": "Request"},
    ],
}


def write_lab_policy(path: Path) -> Path:
    """`LAB_POLICY` at `path` (0600), unless a policy is there already (an operator's edits are kept)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(LAB_POLICY, f, sort_keys=False)
    return path
