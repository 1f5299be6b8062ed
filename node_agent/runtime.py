"""Pod -> CRI configs: sandbox and container configs, labels/annotations for adoption, env, volumes.

Labels on sandboxes and containers are how a restarted kubelet finds (adopts) what it started before:
sandboxes carry io.kubernetes.pod.{name,namespace,uid}; containers also io.kubernetes.container.name,
and annotations with the spec hash and restart count. Volumes live under <root-dir>/volumes/<uid>/<name>,
container logs under <root-dir>/pods/<uid>/<container>/<restart>.log (CRI log format, written by the
runtime).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from node_agent.cri import api_pb2 as pb
from pybernetes.api import quantity
from pybernetes.api.core.v1 import core_pb2 as core

POD_NAME = "io.kubernetes.pod.name"
POD_NAMESPACE = "io.kubernetes.pod.namespace"
POD_UID = "io.kubernetes.pod.uid"
CONTAINER_NAME = "io.kubernetes.container.name"
CONTAINER_HASH = "io.kubernetes.container.hash"
RESTART_COUNT = "io.kubernetes.container.restartCount"
INIT_CONTAINER = "io.pybernetes.container.init"
GRACE_PERIOD = "io.kubernetes.pod.terminationGracePeriod"
MANAGED = "io.pybernetes.kubelet"

DEFAULT_GRACE = 30
CPU_PERIOD = 100_000
MIN_SHARES = 2


class ConfigError(Exception):
    """The container cannot be configured (missing configMap/secret, unknown volume...)."""

    def __init__(self, message: str, reason: str = "CreateContainerConfigError") -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# (kind, namespace, name) -> data, or None when the object does not exist.
ObjectGetter = Callable[[str, str, str], Awaitable[dict[str, bytes] | None]]
# (pod, audience, expirationSeconds) -> a ServiceAccount token bound to the pod (node_agent.tokens).
TokenGetter = Callable[[core.Pod, str, int], Awaitable[bytes]]
DEFAULT_TOKEN_EXPIRATION = 3600


def container_hash(c: core.Container) -> str:
    """Stable hash of the container spec: a change means the container must be recreated."""
    return hashlib.sha256(c.SerializeToString(deterministic=True)).hexdigest()[:16]


def grace_seconds(pod: core.Pod) -> int:
    if pod.metadata.HasField("deletion_grace_period_seconds"):
        return max(int(pod.metadata.deletion_grace_period_seconds), 0)
    if pod.spec.HasField("termination_grace_period_seconds"):
        return max(int(pod.spec.termination_grace_period_seconds), 0)
    return DEFAULT_GRACE


def pod_log_dir(root_dir: Path, uid: str) -> Path:
    return root_dir / "pods" / uid


def pod_volume_dir(root_dir: Path, uid: str) -> Path:
    return root_dir / "volumes" / uid


def sandbox_labels(pod: core.Pod) -> dict[str, str]:
    labels = dict(pod.metadata.labels)
    labels.update({POD_NAME: pod.metadata.name, POD_NAMESPACE: pod.metadata.namespace,
                   POD_UID: pod.metadata.uid, MANAGED: "true"})
    return labels


def sandbox_config(pod: core.Pod, root_dir: Path, attempt: int,
                   dns: pb.DNSConfig | None = None) -> pb.PodSandboxConfig:
    """The CRI sandbox of `pod`; `dns` (node_agent.dns) becomes its resolv.conf (none: the node's, as containerd
    copies it)."""
    md = pod.metadata
    hostname = pod.spec.hostname or md.name
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=md.name, uid=md.uid, namespace=md.namespace, attempt=attempt),
        hostname=hostname[:63],
        log_directory=str(pod_log_dir(root_dir, md.uid)),
        labels=sandbox_labels(pod),
        annotations={**dict(md.annotations), GRACE_PERIOD: str(grace_seconds(pod))},
        linux=pb.LinuxPodSandboxConfig(),
    )
    if pod.spec.host_network:
        cfg.linux.security_context.namespace_options.network = pb.NODE
    protos = {"TCP": pb.TCP, "UDP": pb.UDP, "SCTP": pb.SCTP}
    for c in pod.spec.containers:
        for p in c.ports:
            if p.host_port:
                cfg.port_mappings.append(pb.PortMapping(protocol=protos.get(p.protocol or "TCP", pb.TCP),
                                                        container_port=p.container_port, host_port=p.host_port,
                                                        host_ip=p.host_ip))
    if dns is not None:
        cfg.dns_config.CopyFrom(dns)
    return cfg


def resources(c: core.Container) -> pb.LinuxContainerResources:
    limits, requests = c.resources.limits, c.resources.requests
    res = pb.LinuxContainerResources()
    cpu_req = requests["cpu"].string if "cpu" in requests else (limits["cpu"].string if "cpu" in limits else "")
    shares = MIN_SHARES
    if cpu_req:
        shares = max(quantity.milli_value(cpu_req) * 1024 // 1000, MIN_SHARES)
    res.cpu_shares = shares
    if "cpu" in limits:
        res.cpu_period = CPU_PERIOD
        res.cpu_quota = max(quantity.milli_value(limits["cpu"].string) * CPU_PERIOD // 1000, 1000)
    if "memory" in limits:
        res.memory_limit_in_bytes = quantity.value(limits["memory"].string)
    return res


_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes $(VAR) expansion; $$ escapes; unknown references stay as written."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env.get(name, m.group(0))
    return _VAR.sub(sub, text)


def field_value(pod: core.Pod, path: str, pod_ip: str, host_ip: str) -> str:
    md = pod.metadata
    simple = {
        "metadata.name": md.name, "metadata.namespace": md.namespace, "metadata.uid": md.uid,
        "spec.nodeName": pod.spec.node_name, "spec.serviceAccountName": pod.spec.service_account_name,
        "status.podIP": pod_ip, "status.hostIP": host_ip, "status.podIPs": pod_ip, "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    m = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if m:
        src = md.labels if m.group(1) == "labels" else md.annotations
        return src.get(m.group(2), "")
    raise ConfigError(f"unsupported fieldRef {path!r}")


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def service_env(svc: core.Service) -> dict[str, str]:
    """Docker-link style variables for one Service (Kubernetes' envvars.FromServices), e.g. the `kubernetes`
    Service's KUBERNETES_SERVICE_HOST/PORT that in-cluster clients read; empty for headless Services."""
    ip = svc.spec.cluster_ip
    if not ip or ip == "None" or not svc.spec.ports:
        return {}
    prefix = svc.metadata.name.upper().replace("-", "_")
    first = svc.spec.ports[0]
    out = {f"{prefix}_SERVICE_HOST": ip, f"{prefix}_SERVICE_PORT": str(first.port)}
    for p in svc.spec.ports:
        if p.name:
            out[f"{prefix}_SERVICE_PORT_{p.name.upper().replace('-', '_')}"] = str(p.port)
    proto = (first.protocol or "TCP").lower()
    out[f"{prefix}_PORT"] = f"{proto}://{ip}:{first.port}"
    for p in svc.spec.ports:
        pr = (p.protocol or "TCP")
        base = f"{prefix}_PORT_{p.port}_{pr.upper()}"
        out.update({base: f"{pr.lower()}://{ip}:{p.port}", f"{base}_PROTO": pr.lower(), f"{base}_PORT": str(p.port),
                    f"{base}_ADDR": ip})
    return out


async def build_env(pod: core.Pod, c: core.Container, get: ObjectGetter, pod_ip: str,
                    host_ip: str, base: Mapping[str, str] | None = None) -> list[pb.KeyValue]:
    """The container's environment: `base` (the service variables) first, then envFrom and env over it."""
    ns = pod.metadata.namespace
    env: dict[str, str] = dict(base or {})
    for src in c.env_from:
        if src.HasField("config_map_ref"):
            kind, name, opt = "configmaps", src.config_map_ref.name, src.config_map_ref.optional
        else:
            kind, name, opt = "secrets", src.secret_ref.name, src.secret_ref.optional
        data = await get(kind, ns, name)
        if data is None:
            if opt:
                continue
            raise ConfigError(f'{kind[:-1]} "{name}" not found')
        for k, v in data.items():
            env[src.prefix + k] = _text(v)
    for e in c.env:
        if not e.HasField("value_from"):
            env[e.name] = expand(e.value, env)
            continue
        vf = e.value_from
        if vf.HasField("field_ref"):
            env[e.name] = field_value(pod, vf.field_ref.field_path, pod_ip, host_ip)
        elif vf.HasField("resource_field_ref"):
            env[e.name] = _resource_field(c, vf.resource_field_ref)
        elif vf.HasField("config_map_key_ref") or vf.HasField("secret_key_ref"):
            ref = vf.config_map_key_ref if vf.HasField("config_map_key_ref") else vf.secret_key_ref
            kind = "configmaps" if vf.HasField("config_map_key_ref") else "secrets"
            data = await get(kind, ns, ref.name)
            if data is None or ref.key not in data:
                if ref.optional:
                    continue
                what = f'{kind[:-1]} "{ref.name}"'
                raise ConfigError(f"{what} not found" if data is None
                                  else f"couldn't find key {ref.key} in {what}")
            env[e.name] = _text(data[ref.key])
        else:
            raise ConfigError(f"env {e.name}: unsupported valueFrom")
    return [pb.KeyValue(key=k, value=v) for k, v in env.items()]


def _resource_field(c: core.Container, ref: core.ResourceFieldSelector) -> str:
    res = ref.resource
    kind, _, what = res.partition(".")
    src = c.resources.limits if kind == "limits" else c.resources.requests
    if what not in src:
        return "0"
    divisor = ref.divisor.string or "1"
    v = quantity.parse(src[what].string) / quantity.parse(divisor)
    return str(int(v.to_integral_value(rounding="ROUND_CEILING")))


Files = dict[str, tuple[bytes, int | None]]  # path in the volume -> (contents, mode or None for the default)


def _write_files(target: Path, files: Files, default_mode: int) -> None:
    """Make `target`'s contents `files`, replacing each file atomically in place: the directory itself stays,
    so a bind mount of it sees updates (a refreshed token, an edited configMap); stale files go."""
    target.mkdir(parents=True, exist_ok=True)
    wanted: set[Path] = set()
    for path, (body, mode) in files.items():
        dest = target / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        tmp = dest.with_name(f"..{dest.name}.tmp")
        tmp.write_bytes(body)
        os.chmod(tmp, mode if mode is not None else default_mode)
        os.replace(tmp, dest)
        wanted.add(dest)
    for p in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if p.is_dir() and not p.is_symlink():
            if not any(p.iterdir()):
                p.rmdir()
        elif p not in wanted:
            p.unlink()


def _key_files(data: Mapping[str, bytes], items: Sequence[core.KeyToPath], what: str) -> Files:
    """A configMap's or secret's keys as files: the chosen items, or every key when there are none."""
    chosen = [(i.key, i.path, i.mode if i.HasField("mode") else None) for i in items] or \
        [(k, k, None) for k in data]
    for key, _, _ in chosen:
        if key not in data:
            raise ConfigError(f"{what}: key {key!r} not found")
    return {path: (data[key], mode) for key, path, mode in chosen}


async def _source_data(get: ObjectGetter, ns: str, src: core.ConfigMapVolumeSource | core.SecretVolumeSource
                       | core.ConfigMapProjection | core.SecretProjection, is_cm: bool) -> dict[str, bytes] | None:
    """A configMap's or secret's data for a volume; None when it is missing and optional."""
    name = src.secret_name if isinstance(src, core.SecretVolumeSource) else src.name
    kind = "configmaps" if is_cm else "secrets"
    data = await get(kind, ns, name)
    if data is None and not src.optional:
        raise ConfigError(f'{kind[:-1]} "{name}" not found', "CreateContainerConfigError")
    return data


def format_map(m: Mapping[str, str]) -> str:
    """Kubernetes' fieldpath.FormatMap: sorted `key="quoted value"` lines, for whole labels/annotations."""
    return "\n".join(f"{k}={json.dumps(m[k], ensure_ascii=False)}" for k in sorted(m))


def _downward_files(pod: core.Pod, items: Sequence[core.DownwardAPIVolumeFile]) -> Files:
    """path -> (contents, mode) for downward API items, as the kubelet's downwardAPI volume writes them."""
    out: Files = {}
    for it in items:
        if it.HasField("field_ref"):
            path = it.field_ref.field_path
            if path in ("metadata.labels", "metadata.annotations"):
                value = format_map(pod.metadata.labels if path == "metadata.labels" else pod.metadata.annotations)
            elif path.startswith("metadata."):
                value = field_value(pod, path, "", "")
            else:  # as the apiserver's validation: volumes show the pod's metadata only
                raise ConfigError(f"downwardAPI {it.path!r}: fieldRef {path!r} is not supported in volumes",
                                  "FailedMount")
        elif it.HasField("resource_field_ref"):
            ref = it.resource_field_ref
            c = next((c for c in pod.spec.containers if c.name == ref.container_name), None)
            if c is None:
                raise ConfigError(f"downwardAPI {it.path!r}: no container {ref.container_name!r}", "FailedMount")
            value = _resource_field(c, ref)
        else:
            raise ConfigError(f"downwardAPI {it.path!r}: needs fieldRef or resourceFieldRef", "FailedMount")
        out[it.path] = (value.encode(), it.mode if it.HasField("mode") else None)
    return out


async def _projected_files(pod: core.Pod, proj: core.VolumeProjection, get: ObjectGetter,
                           what: str, token: TokenGetter | None) -> Files:
    if proj.HasField("service_account_token"):
        sat = proj.service_account_token
        if token is None:
            raise ConfigError(f"{what}: serviceAccountToken needs the kubelet's API client", "FailedMount")
        exp = sat.expiration_seconds if sat.HasField("expiration_seconds") else DEFAULT_TOKEN_EXPIRATION
        try:
            return {sat.path: (await token(pod, sat.audience, exp), None)}
        except Exception as e:  # the API's refusal or absence: the mount fails and is retried
            raise ConfigError(f"{what}: failed to fetch token: {e}", "FailedMount") from None
    if proj.HasField("downward_api"):
        return _downward_files(pod, proj.downward_api.items)
    if proj.HasField("config_map") or proj.HasField("secret"):
        is_cm = proj.HasField("config_map")
        src = proj.config_map if is_cm else proj.secret
        data = await _source_data(get, pod.metadata.namespace, src, is_cm)
        return _key_files(data, src.items, what) if data is not None else {}
    kind = next((f.json_name for f, _ in proj.ListFields()), "empty")
    raise ConfigError(f"{what}: {kind} projections are not supported (configMap, secret, downwardAPI and "
                      "serviceAccountToken are)",
                      "FailedMount")


def has_token_projection(pod: core.Pod) -> bool:
    return any(src.HasField("service_account_token") for v in pod.spec.volumes if v.HasField("projected")
               for src in v.projected.sources)


async def prepare_volumes(pod: core.Pod, root_dir: Path, get: ObjectGetter,
                          token: TokenGetter | None = None) -> dict[str, str]:
    """Create/refresh the pod's volumes on disk; name -> host path. `token` serves serviceAccountToken
    projections."""
    base = pod_volume_dir(root_dir, pod.metadata.uid)
    ns = pod.metadata.namespace
    out: dict[str, str] = {}
    for v in pod.spec.volumes:
        if v.HasField("empty_dir"):
            d = base / "empty-dir" / v.name
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o777)
            out[v.name] = str(d)
        elif v.HasField("host_path"):
            hp = v.host_path
            kind = hp.type if hp.HasField("type") else ""
            p = Path(hp.path)
            if kind == "DirectoryOrCreate":
                p.mkdir(parents=True, exist_ok=True)
            elif kind == "FileOrCreate" and not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
            elif kind in ("Directory", "File") and not p.exists():
                raise ConfigError(f"hostPath type check failed: {hp.path} does not exist", "FailedMount")
            out[v.name] = str(p)
        elif v.HasField("config_map") or v.HasField("secret"):
            is_cm = v.HasField("config_map")
            src = v.config_map if is_cm else v.secret
            data = await _source_data(get, ns, src, is_cm) or {}
            default_mode = src.default_mode if src.HasField("default_mode") else 0o644
            d = base / ("configmap" if is_cm else "secret") / v.name
            d.parent.mkdir(parents=True, exist_ok=True)
            _write_files(d, _key_files(data, src.items, f"volume {v.name!r}"), default_mode)
            out[v.name] = str(d)
        elif v.HasField("downward_api") or v.HasField("projected"):
            files: Files = {}
            if v.HasField("downward_api"):
                src_mode = v.downward_api.default_mode if v.downward_api.HasField("default_mode") else 0o644
                files.update(_downward_files(pod, v.downward_api.items))
                d = base / "downward-api" / v.name
            else:
                src_mode = v.projected.default_mode if v.projected.HasField("default_mode") else 0o644
                for i, proj in enumerate(v.projected.sources):
                    files.update(await _projected_files(pod, proj, get, f"volume {v.name!r} source {i}", token))
                d = base / "projected" / v.name
            d.parent.mkdir(parents=True, exist_ok=True)
            _write_files(d, files, src_mode)
            out[v.name] = str(d)
        else:
            raise ConfigError(f"volume {v.name!r}: unsupported volume type", "FailedMount")
    return out


def remove_pod_dirs(root_dir: Path, uid: str) -> None:
    shutil.rmtree(pod_volume_dir(root_dir, uid), ignore_errors=True)
    shutil.rmtree(pod_log_dir(root_dir, uid), ignore_errors=True)


async def container_config(
    pod: core.Pod, c: core.Container, *, restart_count: int, image: str, pod_ip: str, host_ip: str,
    volumes: dict[str, str], get: ObjectGetter, init: bool = False, base_env: Mapping[str, str] | None = None,
) -> pb.ContainerConfig:
    env = await build_env(pod, c, get, pod_ip, host_ip, base_env)
    envmap = {kv.key: kv.value for kv in env}
    mounts: list[pb.Mount] = []
    for vm in c.volume_mounts:
        if vm.name not in volumes:
            raise ConfigError(f"unable to find volume {vm.name!r} for container {c.name!r}")
        host = volumes[vm.name]
        if vm.sub_path:
            sub = Path(host) / vm.sub_path
            if ".." in Path(vm.sub_path).parts:
                raise ConfigError(f"subPath {vm.sub_path!r} must not contain '..'")
            if not sub.exists():
                sub.mkdir(parents=True, exist_ok=True)
            host = str(sub)
        mounts.append(pb.Mount(container_path=vm.mount_path, host_path=host, readonly=vm.read_only))
    md = pod.metadata
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=c.name, attempt=restart_count),
        image=pb.ImageSpec(image=image),
        command=[expand(x, envmap) for x in c.command],
        args=[expand(x, envmap) for x in c.args],
        working_dir=c.working_dir,
        envs=env,
        mounts=mounts,
        labels={POD_NAME: md.name, POD_NAMESPACE: md.namespace, POD_UID: md.uid, CONTAINER_NAME: c.name,
                MANAGED: "true"},
        annotations={CONTAINER_HASH: container_hash(c), RESTART_COUNT: str(restart_count),
                     INIT_CONTAINER: "true" if init else "false", GRACE_PERIOD: str(grace_seconds(pod))},
        log_path=f"{c.name}/{restart_count}.log",
        stdin=c.stdin, stdin_once=c.stdin_once, tty=c.tty,
        linux=pb.LinuxContainerConfig(resources=resources(c)),
    )
    sc = c.security_context
    if c.HasField("security_context"):
        lsc = cfg.linux.security_context
        lsc.privileged = sc.privileged if sc.HasField("privileged") else False
        if sc.HasField("run_as_user"):
            lsc.run_as_user.value = sc.run_as_user
        if sc.HasField("run_as_group"):
            lsc.run_as_group.value = sc.run_as_group
        if sc.HasField("read_only_root_filesystem"):
            lsc.readonly_rootfs = sc.read_only_root_filesystem
        lsc.capabilities.add_capabilities.extend(sc.capabilities.add)
        lsc.capabilities.drop_capabilities.extend(sc.capabilities.drop)
    elif pod.spec.security_context.HasField("run_as_user"):
        cfg.linux.security_context.run_as_user.value = pod.spec.security_context.run_as_user
    return cfg


def secret_data(sec: core.Secret) -> dict[str, bytes]:
    data = dict(sec.data)
    for k, v in getattr(sec, "string_data", {}).items():
        data[k] = v.encode()
    return data


def configmap_data(cm: core.ConfigMap) -> dict[str, bytes]:
    data = {k: v.encode() for k, v in cm.data.items()}
    data.update(dict(cm.binary_data))
    return data

