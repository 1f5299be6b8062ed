"""Client configuration: a kubeconfig-shaped YAML file (clusters, users, contexts, current-context).

Found through `--config`, then $PBCONFIG, then ~/.pybernetes/config (as kubectl's --kubeconfig,
$KUBECONFIG, ~/.kube/config). The apiserver writes one for its admin user on first start.

Two shapes are read: a standard kubeconfig (server `https://...` for the REST API, certificate-authority-data,
and the gRPC address pbctl uses in the cluster's `pybernetes.io/grpc` extension), which real kubectl uses
unchanged; and the older gRPC-only one whose server is a bare host:port (the lab still writes it).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pybernetes.errors import ConfigError

DEFAULT_PATH = Path.home() / ".pybernetes" / "config"
GRPC_EXTENSION = "pybernetes.io/grpc"  # cluster extension: {address: host:port} of the gRPC API


@dataclass(frozen=True)
class ClientConfig:
    server: str
    token: str = ""
    namespace: str = "default"
    context: str = "default"
    path: str = ""


def config_path(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("PBCONFIG") or DEFAULT_PATH)


def render(server: str, token: str, *, name: str = "default", namespace: str = "default") -> str:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def render_kubeconfig(https_server: str, grpc_address: str, token: str, ca_pem: bytes, *,
                      name: str = "default", namespace: str = "default") -> str:
    """A standard kubeconfig (kubectl and the official clients use it as is) that also names the gRPC address."""
    cluster: dict[str, Any] = {
        "server": https_server,
        "certificate-authority-data": base64.b64encode(ca_pem).decode(),
        "extensions": [{"name": GRPC_EXTENSION, "extension": {"address": grpc_address}}],
    }
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write(path: Path, server: str, token: str, *, name: str = "default") -> None:
    """Write a gRPC-only config readable by its owner only (it holds a credential)."""
    write_text(path, render(server, token, name=name))


def write_kubeconfig(path: Path, https_server: str, grpc_address: str, token: str, ca_pem: bytes, *,
                     name: str = "default") -> None:
    """Write a standard kubeconfig (see render_kubeconfig), owner-only."""
    write_text(path, render_kubeconfig(https_server, grpc_address, token, ca_pem, name=name))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _named(items: Any, name: str, what: str, path: Path) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            return body if isinstance(body, dict) else {}
    raise ConfigError(f"{path}: no {what} named {name!r}")


def load(explicit: str | None = None, *, context: str | None = None, server: str | None = None,
         token: str | None = None) -> ClientConfig:
    """Resolve the effective config; explicit server/token flags override the file."""
    path = config_path(explicit)
    if not path.exists():
        if server:
            return ClientConfig(server=server, token=token or "")
        raise ConfigError(f"no client config at {path}: start pb-apiserver (it writes <data-dir>/admin.conf) "
                          f"and point --config or PBCONFIG at it")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from None
    ctx_name = context or doc.get("current-context") or "default"
    ctx = _named(doc.get("contexts"), ctx_name, "context", path)
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ctx_name), "cluster", path)
    user = _named(doc.get("users"), ctx.get("user", ctx_name), "user", path) if ctx.get("user") else {}
    srv = server or grpc_address(cluster)
    if not srv:
        raise ConfigError(f"{path}: cluster {ctx.get('cluster')!r} has no server")
    return ClientConfig(server=str(srv), token=token or str(user.get("token", "")),
                        namespace=str(ctx.get("namespace") or "default"), context=ctx_name, path=str(path))


def grpc_address(cluster: dict[str, Any]) -> str:
    """Where pbctl connects: the cluster's pybernetes.io/grpc extension, else its server (a bare host:port in
    the older shape; an https:// URL is taken as host:port when no extension names another)."""
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == GRPC_EXTENSION:
            body = ext.get("extension")
            if isinstance(body, dict) and body.get("address"):
                return str(body["address"])
    srv = str(cluster.get("server") or "")
    for scheme in ("https://", "http://"):
        if srv.startswith(scheme):
            return srv[len(scheme):].rstrip("/")
    return srv
