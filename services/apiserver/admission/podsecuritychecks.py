"""The Pod Security Standards' checks (k8s.io/pod-security-admission policy): baseline and restricted.

`evaluate(spec, level)` returns the failed checks of `level` as (reason, detail) pairs, in check-ID order, worded
as Kubernetes words them (`allowPrivilegeEscalation != false (container "x" must set ...)`). Baseline: host
namespaces, privileged, capabilities beyond the default set, hostPath volumes, hostPorts, procMount,
seccomp Unconfined, unsafe sysctls. Restricted adds: volume types, allowPrivilegeEscalation, runAsNonRoot,
runAsUser=0, a seccomp profile, capabilities dropped to ALL (NET_BIND_SERVICE may be added back); its
capability and seccomp checks replace the baseline ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pybernetes.api.core.v1 import core_pb2 as core

LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes"})
# Volume sources the restricted level does not allow (of those modelled), with their JSON names.
RESTRICTED_VOLUMES: tuple[tuple[Literal["host_path", "nfs"], str], ...] = (("host_path", "hostPath"), ("nfs", "nfs"))

Container = core.Container | core.EphemeralContainer
Failure = tuple[str, str]


def _containers(spec: core.PodSpec) -> list[Container]:
    return [*spec.init_containers, *spec.containers, *spec.ephemeral_containers]


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def _who(kind: str, names: Sequence[str]) -> str:
    """`container "a"` or `containers "a", "b"` (pod-security-admission's pluralize)."""
    return f"{kind}{'s' if len(names) > 1 else ''} {_quoted(names)}"


def _verb(names: Sequence[str], one: str, many: str) -> str:
    return one if len(names) == 1 else many


def _sc(c: Container) -> core.SecurityContext:
    return c.security_context


def _host_namespaces(spec: core.PodSpec) -> Failure | None:
    on = [f for f, v in (("hostNetwork", spec.host_network), ("hostPID", spec.host_pid),
                         ("hostIPC", spec.host_ipc)) if v]
    return ("host namespaces", ", ".join(f"{f}=true" for f in on)) if on else None


def _privileged(spec: core.PodSpec) -> Failure | None:
    bad = [c.name for c in _containers(spec) if _sc(c).HasField("privileged") and _sc(c).privileged]
    return ("privileged", f"{_who('container', bad)} must not set securityContext.privileged=true") if bad else None


def _capabilities_baseline(spec: core.PodSpec) -> Failure | None:
    bad: list[str] = []
    caps: list[str] = []
    for c in _containers(spec):
        extra = [cap for cap in _sc(c).capabilities.add if cap not in BASELINE_CAPABILITIES]
        if extra:
            bad.append(c.name)
            caps += [cap for cap in extra if cap not in caps]
    if not bad:
        return None
    return ("non-default capabilities",
            f"{_who('container', bad)} must not include {_quoted(caps)} in securityContext.capabilities.add")


def _host_path(spec: core.PodSpec) -> Failure | None:
    bad = [v.name for v in spec.volumes if v.HasField("host_path")]
    return ("hostPath volumes", _who("volume", bad)) if bad else None


def _host_ports(spec: core.PodSpec) -> Failure | None:
    bad: list[str] = []
    ports: list[str] = []
    for c in _containers(spec):
        used = [str(p.host_port) for p in c.ports if p.host_port]
        if used:
            bad.append(c.name)
            ports += used
    if not bad:
        return None
    return ("hostPort", f"{_who('container', bad)} {_verb(bad, 'uses', 'use')} "
                        f"hostPort{'s' if len(ports) > 1 else ''} {', '.join(ports)}")


def _proc_mount(spec: core.PodSpec) -> Failure | None:
    bad = [c.name for c in _containers(spec) if _sc(c).HasField("proc_mount") and _sc(c).proc_mount != "Default"]
    if not bad:
        return None
    return ("procMount", f'{_who("container", bad)} must not set securityContext.procMount to "Unmasked"')


def _seccomp_baseline(spec: core.PodSpec) -> Failure | None:
    details = []
    if spec.security_context.seccomp_profile.type == "Unconfined":
        details.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad = [c.name for c in _containers(spec) if _sc(c).seccomp_profile.type == "Unconfined"]
    if bad:
        details.append(f'{_who("container", bad)} must not set securityContext.seccompProfile.type to "Unconfined"')
    return ("seccompProfile", "; ".join(details)) if details else None


def _sysctls(spec: core.PodSpec) -> Failure | None:
    bad = [s.name for s in spec.security_context.sysctls if s.name not in SAFE_SYSCTLS]
    return ("forbidden sysctls", ", ".join(bad)) if bad else None


def _volume_types(spec: core.PodSpec) -> Failure | None:
    bad = []
    for v in spec.volumes:
        for f, json_name in RESTRICTED_VOLUMES:
            if v.HasField(f):
                bad.append(f'volume "{v.name}" uses restricted volume type "{json_name}"')
    return ("restricted volume types", "; ".join(bad)) if bad else None


def _privilege_escalation(spec: core.PodSpec) -> Failure | None:
    bad = [c.name for c in _containers(spec)
           if not (_sc(c).HasField("allow_privilege_escalation") and not _sc(c).allow_privilege_escalation)]
    if not bad:
        return None
    return ("allowPrivilegeEscalation != false",
            f"{_who('container', bad)} must set securityContext.allowPrivilegeEscalation=false")


def _run_as_non_root(spec: core.PodSpec) -> Failure | None:
    psc = spec.security_context
    details = []
    pod_true = psc.HasField("run_as_non_root") and psc.run_as_non_root
    if psc.HasField("run_as_non_root") and not psc.run_as_non_root:
        details.append("pod must not set securityContext.runAsNonRoot=false")
    explicit_false = [c.name for c in _containers(spec)
                      if _sc(c).HasField("run_as_non_root") and not _sc(c).run_as_non_root]
    if explicit_false:
        details.append(f"{_who('container', explicit_false)} must not set securityContext.runAsNonRoot=false")
    if not pod_true:
        unset = [c.name for c in _containers(spec) if not _sc(c).HasField("run_as_non_root")]
        if unset:
            details.append(f"pod or {_who('container', unset)} must set securityContext.runAsNonRoot=true")
    return ("runAsNonRoot != true", "; ".join(details)) if details else None


def _run_as_user(spec: core.PodSpec) -> Failure | None:
    details = []
    if spec.security_context.HasField("run_as_user") and spec.security_context.run_as_user == 0:
        details.append("pod must not set runAsUser=0")
    bad = [c.name for c in _containers(spec) if _sc(c).HasField("run_as_user") and _sc(c).run_as_user == 0]
    if bad:
        details.append(f"{_who('container', bad)} must not set runAsUser=0")
    return ("runAsUser=0", "; ".join(details)) if details else None


def _seccomp_restricted(spec: core.PodSpec) -> Failure | None:
    allowed = ("RuntimeDefault", "Localhost")
    pod_type = spec.security_context.seccomp_profile.type
    details = []
    if pod_type and pod_type not in allowed:
        details.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    bad = [c.name for c in _containers(spec) if _sc(c).seccomp_profile.type
           and _sc(c).seccomp_profile.type not in allowed]
    if bad:
        kinds = sorted({_sc(c).seccomp_profile.type for c in _containers(spec) if c.name in bad})
        details.append(f"{_who('container', bad)} must not set securityContext.seccompProfile.type to "
                       f"{_quoted(kinds)}")
    if pod_type not in allowed:
        unset = [c.name for c in _containers(spec) if not _sc(c).seccomp_profile.type]
        if unset:
            details.append(f"pod or {_who('container', unset)} must set securityContext.seccompProfile.type to "
                           '"RuntimeDefault" or "Localhost"')
    return ("seccompProfile", "; ".join(details)) if details else None


def _capabilities_restricted(spec: core.PodSpec) -> Failure | None:
    no_drop = [c.name for c in _containers(spec) if "ALL" not in _sc(c).capabilities.drop]
    bad: list[str] = []
    caps: list[str] = []
    for c in _containers(spec):
        extra = [cap for cap in _sc(c).capabilities.add if cap != "NET_BIND_SERVICE"]
        if extra:
            bad.append(c.name)
            caps += [cap for cap in extra if cap not in caps]
    details = []
    if no_drop:
        details.append(f'{_who("container", no_drop)} must set securityContext.capabilities.drop=["ALL"]')
    if bad:
        details.append(f"{_who('container', bad)} must not include {_quoted(caps)} in "
                       "securityContext.capabilities.add")
    return ("unrestricted capabilities", "; ".join(details)) if details else None


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    fn: Callable[[core.PodSpec], Failure | None]
    overrides: str = ""


CHECKS = sorted([
    Check("allowPrivilegeEscalation", "restricted", _privilege_escalation),
    Check("capabilities_baseline", "baseline", _capabilities_baseline),
    Check("capabilities_restricted", "restricted", _capabilities_restricted, overrides="capabilities_baseline"),
    Check("hostNamespaces", "baseline", _host_namespaces),
    Check("hostPathVolumes", "baseline", _host_path),
    Check("hostPorts", "baseline", _host_ports),
    Check("privileged", "baseline", _privileged),
    Check("procMount", "baseline", _proc_mount),
    Check("restrictedVolumes", "restricted", _volume_types),
    Check("runAsNonRoot", "restricted", _run_as_non_root),
    Check("runAsUser", "restricted", _run_as_user),
    Check("seccompProfile_baseline", "baseline", _seccomp_baseline),
    Check("seccompProfile_restricted", "restricted", _seccomp_restricted, overrides="seccompProfile_baseline"),
    Check("sysctls", "baseline", _sysctls),
], key=lambda c: c.id)


def evaluate(spec: core.PodSpec, level: str) -> list[Failure]:
    """The checks of `level` (and the levels below it) that `spec` fails."""
    if level not in LEVELS or level == "privileged":
        return []
    rank = LEVELS.index(level)
    active = [c for c in CHECKS if LEVELS.index(c.level) <= rank]
    overridden = {c.overrides for c in active if c.overrides}
    out = []
    for c in active:
        if c.id in overridden:
            continue
        f = c.fn(spec)
        if f is not None:
            out.append(f)
    return out


def describe(failures: list[Failure]) -> str:
    """`reason (detail), reason (detail)`, as the plugin's messages list them."""
    return ", ".join(f"{r} ({d})" if d else r for r, d in failures)
