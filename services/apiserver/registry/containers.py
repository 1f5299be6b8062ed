"""Containers (regular, init and ephemeral): validation (ports, env, resources, probes, lifecycle handlers,
the container list of a pod spec) and defaults (pull policy, termination message, probe and handler fields).

Used by podspec for pods and pod templates.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.registry.field import Errs, child, index, key
from services.apiserver.registry.formats import (
    PORT_PROTOCOLS,
    is_config_map_key,
    is_dns1123_label,
    is_qualified_name,
    is_relaxed_env_var_name,
    is_valid_ip,
    is_valid_port_name,
    is_valid_port_num,
    validate_port_num_or_name,
)
from services.apiserver.registry.protofields import has_field
from services.apiserver.registry.quantities import amount
from services.apiserver.registry.volumes import validate_volume_mounts

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_STANDARD_CONTAINER_RESOURCES = ("cpu", "memory", "ephemeral-storage")


def _validate_container_ports(ports: Sequence[core.ContainerPort], path: str, errs: Errs,
                              host_network: bool) -> None:
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = index(path, i)
        if port.name:
            msgs = is_valid_port_name(port.name)
            if msgs:
                errs.invalid_each(child(p, "name"), port.name, msgs)
            elif port.name in names:
                errs.duplicate(child(p, "name"), port.name)
            else:
                names.add(port.name)
        if port.container_port == 0:
            errs.required(child(p, "containerPort"))
        else:
            errs.invalid_each(child(p, "containerPort"), port.container_port,
                              is_valid_port_num(port.container_port))
        if port.host_port != 0:
            errs.invalid_each(child(p, "hostPort"), port.host_port, is_valid_port_num(port.host_port))
            if host_network and port.host_port != port.container_port:
                errs.invalid(child(p, "hostPort"), port.host_port,
                             "must match `containerPort` when `hostNetwork` is true")
        if not port.protocol:
            errs.required(child(p, "protocol"))
        elif port.protocol not in PORT_PROTOCOLS:
            errs.not_supported(child(p, "protocol"), port.protocol, PORT_PROTOCOLS)
        if port.host_ip:
            errs.invalid_each(child(p, "hostIP"), port.host_ip, is_valid_ip(port.host_ip))


def _validate_env(env: Sequence[core.EnvVar], path: str, errs: Errs) -> None:
    for i, ev in enumerate(env):
        p = index(path, i)
        if not ev.name:
            errs.required(child(p, "name"))
        errs.invalid_each(child(p, "name"), ev.name, is_relaxed_env_var_name(ev.name))
        if ev.HasField("value_from"):
            vp = child(p, "valueFrom")
            n = sum(has_field(ev.value_from, f) for f in ("field_ref", "resource_field_ref",
                                                          "config_map_key_ref", "secret_key_ref", "file_key_ref"))
            if n == 0:
                errs.invalid(vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` "
                                     "or `secretKeyRef`")
            elif n > 1:
                errs.invalid(vp, "", "may not have more than one field specified at a time")
            if ev.value:
                errs.invalid(vp, "", "may not be specified when `value` is not empty")
            for ref_field, ref_json in (("config_map_key_ref", "configMapKeyRef"),
                                        ("secret_key_ref", "secretKeyRef")):
                if has_field(ev.value_from, ref_field):
                    ref = getattr(ev.value_from, ref_field)
                    if not ref.name:
                        errs.required(child(vp, ref_json, "name"))
                    if ref.key:
                        errs.invalid_each(child(vp, ref_json, "key"), ref.key, is_config_map_key(ref.key))


def _validate_env_from(env_from: Sequence[core.EnvFromSource], path: str, errs: Errs) -> None:
    for i, ef in enumerate(env_from):
        p = index(path, i)
        n = ef.HasField("config_map_ref") + ef.HasField("secret_ref")
        if n == 0:
            errs.invalid(p, "", "must specify one of: `configMapRef` or `secretRef`")
        elif n > 1:
            errs.invalid(p, "", "may not have more than one field specified at a time")
        if ef.prefix:
            errs.invalid_each(child(p, "prefix"), ef.prefix, is_relaxed_env_var_name(ef.prefix))


def _overcommit_allowed(name: str) -> bool:
    native = "/" not in name or name.startswith("kubernetes.io/")
    return native and not name.startswith("hugepages-")


def _validate_resources(r: core.ResourceRequirements, path: str, errs: Errs) -> None:
    lim_path, req_path = child(path, "limits"), child(path, "requests")
    for bag, bag_path in ((r.limits, lim_path), (r.requests, req_path)):
        for name in sorted(bag):
            p = key(bag_path, name)
            errs.invalid_each(p, name, is_qualified_name(name))
            if "/" not in name:
                if name not in _STANDARD_CONTAINER_RESOURCES and not name.startswith("hugepages-"):
                    errs.invalid(p, name, "must be a standard resource for containers")
            elif not name.startswith("kubernetes.io/") and not name.startswith("requests."):
                pass  # an extended resource (example.com/gpu)
            value = amount(bag[name].string, p, errs)
            if value is None:
                continue
            if not _overcommit_allowed(name) and not name.startswith("hugepages-") and value % 1 != 0:
                errs.invalid(p, bag[name].string, "must be an integer")
    for name in sorted(r.requests):
        req_text = r.requests[name].string
        if name in r.limits:
            lim_text = r.limits[name].string
            try:
                req, lim = quantity.parse(req_text), quantity.parse(lim_text)
            except quantity.QuantityError:
                continue
            if req != lim and not _overcommit_allowed(name):
                errs.invalid(req_path, req_text, f"must be equal to {name} limit of {lim_text}")
            elif req > lim:
                errs.invalid(req_path, req_text, f"must be less than or equal to {name} limit of {lim_text}")
        elif not _overcommit_allowed(name):
            errs.required(lim_path, "Limit must be set for non overcommitable resources")


def _validate_http_get(h: core.HTTPGetAction, path: str, errs: Errs) -> None:
    if not h.path:
        errs.required(child(path, "path"))
    validate_port_num_or_name(h.port, child(path, "port"), errs)
    if h.scheme not in ("HTTP", "HTTPS"):
        errs.not_supported(child(path, "scheme"), h.scheme, ("HTTP", "HTTPS"))
    for i, hdr in enumerate(h.http_headers):
        if not re.fullmatch(r"[-A-Za-z0-9!#$%&'*+.^_`|~]+", hdr.name):
            errs.invalid(child(index(child(path, "httpHeaders"), i), "name"), hdr.name,
                         "a valid HTTP header must consist of alphanumeric characters or '-' "
                         "(e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')")


def _validate_handler(h: core.Probe | core.LifecycleHandler, path: str, errs: Errs,
                      grace_period: int | None = None) -> None:
    kinds: list[tuple[str, str]] = [("exec", "exec"), ("http_get", "httpGet"), ("tcp_socket", "tcpSocket")]
    kinds.append(("grpc", "grpc") if isinstance(h, core.Probe) else ("sleep", "sleep"))
    n = 0
    for field_name, json_name in kinds:
        if not has_field(h, field_name):
            continue
        p = child(path, json_name)
        if n:
            errs.forbidden(p, "may not specify more than 1 handler type")
            continue
        n += 1
        if field_name == "exec" and not h.exec.command:
            errs.required(child(p, "command"))
        elif field_name == "http_get":
            _validate_http_get(h.http_get, p, errs)
        elif field_name == "tcp_socket":
            validate_port_num_or_name(h.tcp_socket.port, child(p, "port"), errs)
        elif field_name == "grpc" and isinstance(h, core.Probe):
            errs.invalid_each(child(p, "port"), h.grpc.port, is_valid_port_num(h.grpc.port))
        elif field_name == "sleep" and isinstance(h, core.LifecycleHandler):
            secs = h.sleep.seconds
            if secs < 0 or (grace_period is not None and secs > grace_period):
                errs.invalid(p, secs, "must be non-negative and less than terminationGracePeriodSeconds "
                                      f"({grace_period if grace_period is not None else 30})")
    if n == 0:
        errs.required(path, "must specify a handler type")


def _validate_probe(probe: core.Probe, path: str, errs: Errs, kind: str) -> None:
    _validate_handler(probe, path, errs)
    for field_name, json_name in (("initial_delay_seconds", "initialDelaySeconds"),
                                  ("timeout_seconds", "timeoutSeconds"), ("period_seconds", "periodSeconds"),
                                  ("success_threshold", "successThreshold"),
                                  ("failure_threshold", "failureThreshold")):
        errs.nonnegative(child(path, json_name), getattr(probe, field_name))
    if probe.HasField("termination_grace_period_seconds"):
        if kind == "readiness":
            errs.invalid(child(path, "terminationGracePeriodSeconds"), probe.termination_grace_period_seconds,
                         "must not be set for readinessProbes")
        elif probe.termination_grace_period_seconds <= 0:
            errs.invalid(child(path, "terminationGracePeriodSeconds"), probe.termination_grace_period_seconds,
                         "must be greater than 0")
    if kind in ("liveness", "startup") and probe.success_threshold != 1:
        errs.invalid(child(path, "successThreshold"), probe.success_threshold, "must be 1")


_PROBES = (("liveness_probe", "livenessProbe", "liveness"), ("readiness_probe", "readinessProbe", "readiness"),
           ("startup_probe", "startupProbe", "startup"))


def _validate_container_common(c: core.Container | core.EphemeralContainer, volumes: set[str], path: str,
                               errs: Errs, host_network: bool) -> None:
    name_path = child(path, "name")
    if not c.name:
        errs.required(name_path)
    else:
        errs.invalid_each(name_path, c.name, is_dns1123_label(c.name))
    if not c.image:
        errs.required(child(path, "image"))
    elif c.image.strip() != c.image:
        errs.invalid(child(path, "image"), c.image, "must not have leading or trailing whitespace")
    policy = c.termination_message_policy
    if not policy:
        errs.required(child(path, "terminationMessagePolicy"), "must be 'File' or 'FallbackToLogsOnError'")
    elif policy not in ("File", "FallbackToLogsOnError"):
        errs.not_supported(child(path, "terminationMessagePolicy"), policy, ("File", "FallbackToLogsOnError"))
    _validate_container_ports(c.ports, child(path, "ports"), errs, host_network)
    _validate_env(c.env, child(path, "env"), errs)
    _validate_env_from(c.env_from, child(path, "envFrom"), errs)
    validate_volume_mounts(c.volume_mounts, volumes, child(path, "volumeMounts"), errs)
    if not c.image_pull_policy:
        errs.required(child(path, "imagePullPolicy"))
    elif c.image_pull_policy not in PULL_POLICIES:
        errs.not_supported(child(path, "imagePullPolicy"), c.image_pull_policy, PULL_POLICIES)
    _validate_resources(c.resources, child(path, "resources"), errs)


def _validate_lifecycle_and_probes(c: core.Container, path: str, errs: Errs, grace: int | None) -> None:
    if c.HasField("lifecycle"):
        for field_name, json_name in (("post_start", "postStart"), ("pre_stop", "preStop")):
            if has_field(c.lifecycle, field_name):
                _validate_handler(getattr(c.lifecycle, field_name), child(path, "lifecycle", json_name), errs,
                                  grace)
    for field_name, json_name, kind in _PROBES:
        if has_field(c, field_name):
            _validate_probe(getattr(c, field_name), child(path, json_name), errs, kind)


def validate_containers(spec: core.PodSpec, volumes: set[str], path: str, errs: Errs) -> None:
    grace = spec.termination_grace_period_seconds if spec.HasField("termination_grace_period_seconds") else None
    cpath = child(path, "containers")
    if not spec.containers:
        errs.required(cpath)
    names: set[str] = set()
    for i, c in enumerate(spec.containers):
        p = index(cpath, i)
        _validate_container_common(c, volumes, p, errs, spec.host_network)
        if c.name in names:
            errs.duplicate(child(p, "name"), c.name)
        elif c.name:
            names.add(c.name)
        _validate_lifecycle_and_probes(c, p, errs, grace)
        if c.HasField("restart_policy"):
            errs.forbidden(child(p, "restartPolicy"), "may not be set for non-init containers")
    ipath = child(path, "initContainers")
    for i, c in enumerate(spec.init_containers):
        p = index(ipath, i)
        _validate_container_common(c, volumes, p, errs, spec.host_network)
        if c.name in names:
            errs.duplicate(child(p, "name"), c.name)
        elif c.name:
            names.add(c.name)
        if c.HasField("restart_policy") and c.restart_policy != "Always":
            errs.not_supported(child(p, "restartPolicy"), c.restart_policy, ("Always",))
        if c.HasField("restart_policy") and c.restart_policy == "Always":  # a sidecar: probes allowed
            _validate_lifecycle_and_probes(c, p, errs, grace)
            continue
        for field_name, json_name in (("lifecycle", "lifecycle"), *((f, j) for f, j, _ in _PROBES)):
            if has_field(c, field_name):
                errs.forbidden(child(p, json_name), "may not be set for init containers without restartPolicy=Always")


def image_tag(image: str) -> str:
    """The tag docker's reference parser would find: "" for digests, "latest" when none is given."""
    if "@" in image:
        return ""
    last = image.rsplit("/", 1)[-1]  # a registry host:port before the last '/' is not a tag
    return last.rsplit(":", 1)[1] if ":" in last else "latest"


def _default_http_get(h: core.HTTPGetAction) -> None:
    if not h.path:
        h.path = "/"
    if not h.scheme:
        h.scheme = "HTTP"


def _default_probe(p: core.Probe) -> None:
    if p.timeout_seconds == 0:
        p.timeout_seconds = 1
    if p.period_seconds == 0:
        p.period_seconds = 10
    if p.success_threshold == 0:
        p.success_threshold = 1
    if p.failure_threshold == 0:
        p.failure_threshold = 3
    if p.HasField("http_get"):
        _default_http_get(p.http_get)
    if p.HasField("grpc") and not p.grpc.HasField("service"):
        p.grpc.service = ""


def default_container(c: core.Container | core.EphemeralContainer) -> None:
    if not c.image_pull_policy:
        c.image_pull_policy = "Always" if image_tag(c.image) == "latest" else "IfNotPresent"
    if not c.termination_message_path:
        c.termination_message_path = "/dev/termination-log"
    if not c.termination_message_policy:
        c.termination_message_policy = "File"
    # ResourceRequirements is a value struct in Kubernetes: `resources: {}` (kubectl sends it, e.g. in the template
    # `rollout undo` copies back) is the same container as none, so it is stored as none (one pod-template-hash).
    if c.HasField("resources") and not c.resources.ByteSize():
        c.ClearField("resources")
    for port in c.ports:
        if not port.protocol:
            port.protocol = "TCP"
    for name in ("liveness_probe", "readiness_probe", "startup_probe"):
        if has_field(c, name):
            _default_probe(getattr(c, name))
    if c.HasField("lifecycle"):
        for handler in (c.lifecycle.post_start, c.lifecycle.pre_stop):
            if handler.HasField("http_get"):
                _default_http_get(handler.http_get)
