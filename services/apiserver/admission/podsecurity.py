"""PodSecurity: the Pod Security Standards, chosen per namespace by its labels (Kubernetes' built-in
pod-security-admission).

`pod-security.kubernetes.io/enforce: baseline|restricted` refuses a pod that fails the level's checks
(podsecuritychecks.py): `pods "x" is forbidden: violates PodSecurity "restricted:latest": <check> (<detail>), ...`.
`.../warn` answers with `Warning: would violate PodSecurity "...": ...` and `.../audit` logs the violation.
Workloads with pod templates (Deployments, Jobs, ...) are never refused: each level they would violate is a
warning. The `-version` labels name the standard's version (only `latest` rules are modelled). Namespace
labels are validated (an unknown level is Invalid), and a namespace whose enforce level is tightened is answered
with a warning naming the existing pods that violate it.
"""

from __future__ import annotations

import logging
import re

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.batch.v1 import batch_pb2 as batch
from pybernetes.api.core.v1 import core_pb2 as core

from ..storage.store import Store
from . import lookup
from .attributes import CREATE, UPDATE, Attributes, Plugin, forbidden
from .podsecuritychecks import LEVELS, describe, evaluate

log = logging.getLogger("pybernetes.apiserver.admission")

NAME = "PodSecurity"
PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
_VERSION = re.compile(r"^(latest|v1\.(0|[1-9][0-9]*))$")


def _level_label(labels: dict[str, str], mode: str) -> tuple[str, str]:
    level = labels.get(PREFIX + mode, "")
    version = labels.get(f"{PREFIX}{mode}-version", "") or "latest"
    return level, version


def validate_labels(labels: dict[str, str]) -> list[errors.FieldError]:
    out = []
    for mode in MODES:
        key = PREFIX + mode
        if key in labels and labels[key] not in LEVELS:
            out.append(errors.FieldError(f"metadata.labels[{key}]", f'Invalid value: "{labels[key]}": must be one '
                                         f"of {', '.join(LEVELS)}"))
        vkey = f"{key}-version"
        if vkey in labels and not _VERSION.match(labels[vkey]):
            out.append(errors.FieldError(f"metadata.labels[{vkey}]", f'Invalid value: "{labels[vkey]}": must be '
                                         '"latest" or "v1.x"'))
    return out


def template_spec(obj: Message | None) -> core.PodSpec | None:
    """The pod spec a workload's template gives its pods."""
    if isinstance(obj, apps.Deployment | apps.ReplicaSet | apps.StatefulSet | apps.DaemonSet | batch.Job
                  | core.ReplicationController):
        return obj.spec.template.spec
    if isinstance(obj, batch.CronJob):
        return obj.spec.job_template.spec.template.spec
    return None


class PodSecurity(Plugin):
    name = NAME
    validating = True

    def __init__(self, store: Store) -> None:
        self.store = store

    async def validate(self, a: Attributes) -> None:
        if a.resource.cls is core.Namespace and not a.subresource and a.operation in (CREATE, UPDATE):
            await self._namespace(a)
            return
        if a.subresource or a.operation != CREATE or not a.namespace:
            return
        if isinstance(a.obj, core.Pod):
            spec: core.PodSpec | None = a.obj.spec
            is_pod = True
        else:
            spec, is_pod = template_spec(a.obj), False
        if spec is None:
            return
        ns = await lookup.get(self.store, core.Namespace, "", a.namespace)
        labels = dict(ns.metadata.labels) if ns is not None else {}
        for mode in MODES:
            level, version = _level_label(labels, mode)
            if not level or level == "privileged":
                continue
            failures = evaluate(spec, level)
            if not failures:
                continue
            policy = f'"{level}:{version}"'
            if mode == "enforce" and is_pod:
                raise forbidden(a, f"violates PodSecurity {policy}: {describe(failures)}")
            if mode == "audit":
                log.info("pod security audit violation resource=%s object=%s/%s policy=%s", a.plural, a.namespace,
                         a.name, policy)
                continue
            msg = f"would violate PodSecurity {policy}: {describe(failures)}"
            if msg not in a.warnings:
                a.warnings.append(msg)

    async def _namespace(self, a: Attributes) -> None:
        if not isinstance(a.obj, core.Namespace):
            return
        labels = dict(a.obj.metadata.labels)
        errs = validate_labels(labels)
        if errs:
            detail = ", ".join(str(e) for e in errs)
            raise errors.Invalid(f'namespaces "{a.name}" is invalid: {detail}', causes=errs, kind="Namespace",
                                 name=a.name)
        level, version = _level_label(labels, "enforce")
        old_level = ""
        if isinstance(a.old, core.Namespace):
            old_level = _level_label(dict(a.old.metadata.labels), "enforce")[0]
        if a.operation != UPDATE or not level or level == old_level or level == "privileged":
            return
        bad: list[str] = []
        for stored in await lookup.list_fresh(self.store, core.Pod, a.name):
            pod = stored.obj
            assert isinstance(pod, core.Pod)  # list_fresh returns the kind asked for
            failures = evaluate(pod.spec, level)
            if failures:
                bad.append(f"{pod.metadata.name}: {', '.join(reason for reason, _ in failures)}")
        if bad:
            a.warnings.append(f'existing pods in namespace "{a.name}" violate the new PodSecurity enforce level '
                              f'"{level}:{version}"')
            a.warnings.extend(bad)
