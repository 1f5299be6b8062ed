"""The objects `create namespace|deployment|service|configmap|secret generic|serviceaccount` and `run` build,
exactly as kubectl 1.33's generators do, and their `--dry-run=client -o yaml|json` rendering.

Each generator returns the object as kubectl's JSON (its Go structs' field order, `creationTimestamp: null`,
empty `status`); `kubectl_yaml` renders it as kubectl does (sorted keys, double-quoted strings) and
`to_message` turns it into the typed object sent to the apiserver. Callers: the create and run verbs.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any

import yaml
from google.protobuf.message import Message

from pbctl.common import CliError
from pybernetes.api import codec

Obj = dict[str, Any]


def _metadata(name: str, namespace: str, labels: dict[str, str] | None = None) -> Obj:
    md: Obj = {"name": name}
    if namespace:
        md["namespace"] = namespace
    md["creationTimestamp"] = None
    if labels:
        md["labels"] = dict(sorted(labels.items()))  # a Go map: JSON sorts its keys
    return md


def namespace(name: str) -> Obj:
    return {"kind": "Namespace", "apiVersion": "v1", "metadata": _metadata(name, ""), "spec": {}, "status": {}}


def serviceaccount(name: str, ns: str) -> Obj:
    return {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": _metadata(name, ns)}


# The alphabet of Kubernetes' random name suffixes (utilrand.String): no vowels, no confusable digits.
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def container_name(image: str) -> str:
    """kubectl's container name for an image: its last path segment without tag or digest; a name with `_`
    gets `-` instead and a random suffix (sanitizeAndUniquify), as `my_app` becomes `my-app-x7k2q`."""
    name = image.split("/")[-1].split(":")[0].split("@")[0]
    if "_" in name:
        name = name.replace("_", "-") + "-" + "".join(secrets.choice(_SUFFIX_CHARS) for _ in range(5))
    return name


def deployment(name: str, ns: str, images: list[str], replicas: int = 1, port: int = -1) -> Obj:
    labels = {"app": name}
    containers: list[Obj] = []
    for i, image in enumerate(images):
        c: Obj = {"name": container_name(image), "image": image}
        if port >= 0 and i == 0:  # kubectl: --port goes to the first container only
            c["ports"] = [{"containerPort": port}]
        c["resources"] = {}
        containers.append(c)
    return {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": _metadata(name, ns, labels),
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)},
                     "template": {"metadata": {"creationTimestamp": None, "labels": dict(labels)},
                                  "spec": {"containers": containers}},
                     "strategy": {}},
            "status": {}}


SERVICE_TYPES = {"clusterip": "ClusterIP", "nodeport": "NodePort", "loadbalancer": "LoadBalancer"}


def _int_or_name(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def service(kind: str, name: str, ns: str, tcp: list[str], cluster_ip: str = "", node_port: int = 0) -> Obj:
    """`create service clusterip|nodeport|loadbalancer NAME --tcp=PORT[:TARGET]`."""
    stype = SERVICE_TYPES[kind]
    if not tcp and not (stype == "ClusterIP" and cluster_ip == "None"):
        raise CliError("at least one tcp port specifier must be provided")
    ports: list[Obj] = []
    for spec in tcp:
        port, _, target = spec.partition(":")
        if not port.isdigit() or (not target and not _int_or_name(port)):
            raise CliError(f"invalid port specifier: {spec}")
        p: Obj = {"name": f"{port}-{target}" if target else port, "protocol": "TCP", "port": int(port),
                  "targetPort": _int_or_name(target or port)}
        if node_port:
            p["nodePort"] = node_port
        ports.append(p)
    spec_: Obj = {}
    if ports:
        spec_["ports"] = ports
    spec_["selector"] = {"app": name}
    if cluster_ip:
        spec_["clusterIP"] = cluster_ip
    spec_["type"] = stype
    return {"kind": "Service", "apiVersion": "v1", "metadata": _metadata(name, ns, {"app": name}),
            "spec": spec_, "status": {"loadBalancer": {}}}


def _sources(literals: list[str], files: list[str]) -> list[tuple[str, bytes]]:
    """--from-literal=K=V and --from-file=[K=]PATH as (key, bytes), in kubectl's order (files, then literals)."""
    out: list[tuple[str, bytes]] = []
    for f in files:
        key, sep, path = f.partition("=")
        if not sep:
            key, path = Path(f).name, f
        p = Path(path)
        if p.is_dir():
            out.extend((c.name, c.read_bytes()) for c in sorted(p.iterdir()) if c.is_file())
            continue
        if not p.exists():
            raise CliError(f"error reading {path}: no such file or directory")
        out.append((key, p.read_bytes()))
    for lit in literals:
        key, sep, value = lit.partition("=")
        if not sep or not key:
            raise CliError(f"invalid literal source {lit}, expected key=value")
        out.append((key, value.encode()))
    seen: set[str] = set()
    for key, _ in out:
        if not re.fullmatch(r"[-._a-zA-Z0-9]+", key):
            raise CliError(f'"{key}" is not a valid key name for a ConfigMap or Secret: a valid config key must '
                           "consist of alphanumeric characters, '-', '_' or '.'")
        if key in seen:
            raise CliError(f'cannot add key "{key}", another key by that name already exists')
        seen.add(key)
    return out


def configmap(name: str, ns: str, literals: list[str], files: list[str]) -> Obj:
    obj: Obj = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": _metadata(name, ns)}
    data = {k: v.decode() for k, v in sorted(_sources(literals, files))}
    if data:
        obj["data"] = data
    return obj


def secret_generic(name: str, ns: str, literals: list[str], files: list[str], type_: str = "") -> Obj:
    obj: Obj = {"kind": "Secret", "apiVersion": "v1", "metadata": _metadata(name, ns)}
    data = {k: base64.b64encode(v).decode() for k, v in sorted(_sources(literals, files))}
    if data:
        obj["data"] = data
    if type_:
        obj["type"] = type_
    return obj


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (p for p in text.split(",") if p):
        k, sep, v = part.partition("=")
        if not sep or not k:
            raise CliError(f"invalid label spec: {part}")
        out[k] = v
    return out


def run_pod(name: str, ns: str, image: str, *, port: int = -1, env: list[str] | None = None, labels: str = "",
            restart: str = "Always", command: bool = False, args: list[str] | None = None) -> Obj:
    """`run NAME --image=...`: one Pod labelled run=NAME (or --labels), its container named NAME."""
    if restart not in ("Always", "OnFailure", "Never"):
        raise CliError(f"invalid restart policy: {restart}")
    c: Obj = {"name": name, "image": image}
    if args:
        c["command" if command else "args"] = list(args)
    if port >= 0:
        c["ports"] = [{"containerPort": port}]
    if env:
        pairs = []
        for e in env:
            k, sep, v = e.partition("=")
            if not sep or not k:
                raise CliError(f"invalid env: {e}")
            pairs.append({"name": k, "value": v})
        c["env"] = pairs
    c["resources"] = {}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": _metadata(name, ns, _labels(labels) or {"run": name}),
            "spec": {"containers": [c], "restartPolicy": restart, "dnsPolicy": "ClusterFirst"}, "status": {}}


# -- rendering ------------------------------------------------------------------------------------


class _KubectlDumper(yaml.SafeDumper):
    """sigs.k8s.io/yaml's style: strings that need quoting get double quotes, multi-line ones a block."""

    def choose_scalar_style(self) -> str:
        style = str(super().choose_scalar_style())
        return '"' if style == "'" else style


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_KubectlDumper.add_representer(str, _str)


def kubectl_yaml(obj: Obj) -> str:
    return yaml.dump(obj, Dumper=_KubectlDumper, sort_keys=True, default_flow_style=False, allow_unicode=True)


def render(obj: Obj, output: str) -> str:
    """An object as `-o yaml|json|name` prints it (without the final newline)."""
    if output == "json":
        return json.dumps(obj, indent=4)
    if output == "yaml":
        return kubectl_yaml(obj).rstrip("\n")
    raise CliError(f"unable to match a printer suitable for the output format \"{output}\"")


def _prune(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _prune(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_prune(x) for x in v]
    return v


def to_message(obj: Obj) -> Message:
    """The generated object as the typed message the client sends (nulls dropped)."""
    return codec.parse_object(_prune(obj))
