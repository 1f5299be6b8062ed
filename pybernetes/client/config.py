"""Client configuration: a standard kubeconfig (clusters, users, contexts, current-context), the one file
kubectl and pbctl share.

Found as kubectl finds it: `--kubeconfig` (pbctl's `--config`), then $KUBECONFIG (a colon-separated list
merged as kubectl merges: the first file to name a cluster, user or context wins, and the first
current-context set wins), then ~/.kube/config; then the older pybernetes places, $PBCONFIG and
~/.pybernetes/config. The apiserver writes one for its admin user; the lab merges its context into the
user's kubeconfig (`merge_context`, `remove_context`), as kind does.

The cluster's `server` is the REST API (`https://host:6443`, what kubectl uses); pbctl and the components
speak gRPC at the address in the cluster's `pybernetes.io/grpc` extension. Without that extension the gRPC
address is the server's host with ports.APISERVER_GRPC (a kubeconfig written by another tool for the same
host); an older gRPC-only file whose server is a bare host:port is that address itself.

Credentials, as kubectl reads them: the cluster's certificate-authority(-data), the user's
client-certificate(-data)/client-key(-data) and token/tokenFile. `ClientConfig.tls()` is what the gRPC channel
uses (the same CA and client certificate as REST); a file with neither CA nor certificate is plaintext gRPC.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from pybernetes import certinfo, ports, rpc
from pybernetes.errors import ConfigError

SEARCH_HELP = "kubeconfig (default: $KUBECONFIG, ~/.kube/config, then $PBCONFIG, ~/.pybernetes/config)"
GRPC_EXTENSION = "pybernetes.io/grpc"  # cluster extension: {address: host:port} of the gRPC API
_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


@dataclass(frozen=True)
class ClientConfig:
    server: str  # the gRPC address (host:port)
    token: str = ""
    namespace: str = "default"
    context: str = "default"
    path: str = ""
    https_server: str = ""  # the cluster's REST server URL, when the file names one
    ca_pem: bytes = b""  # the cluster's certificate-authority(-data)
    cert_pem: bytes = b""  # the user's client-certificate(-data)
    key_pem: bytes = b""  # the user's client-key(-data)

    def tls(self) -> rpc.ChannelTLS | None:
        """The gRPC channel's TLS (None: plaintext, for a file naming no CA and no certificate). An expired client
        certificate is refused here with what expired: the server's handshake would only close the connection."""
        if not self.ca_pem and not self.cert_pem:
            return None
        if self.cert_pem:
            _check_not_expired(self.cert_pem, self.path)
        return rpc.ChannelTLS(self.ca_pem, self.cert_pem, self.key_pem)


def _check_not_expired(cert_pem: bytes, where: str) -> None:
    try:
        cert = certinfo.read(certinfo.pem_to_der(cert_pem))
    except ValueError as e:
        raise ConfigError(f"{where}: client-certificate: not a PEM certificate: {e}") from None
    now = dt.datetime.now(dt.UTC)
    if cert.not_after <= now or cert.not_before > now:
        raise ConfigError(f"{where}: the client certificate of {cert.subject()} is valid from "
                          f"{cert.not_before:%Y-%m-%d %H:%M} to {cert.not_after:%Y-%m-%d %H:%M} "
                          f"UTC, not now: the apiserver refuses it (renew it: pbctl certs renew NAME)")


def kube_default() -> Path:
    return Path.home() / ".kube" / "config"


def legacy_default() -> Path:
    return Path.home() / ".pybernetes" / "config"


def search_paths(explicit: str | None = None) -> list[Path]:
    """The files the effective config is merged from, in precedence order (see the module docstring)."""
    if explicit:
        return [Path(explicit)]
    listed = [Path(p) for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return listed
    fallbacks = [kube_default(), *([Path(os.environ["PBCONFIG"])] if os.environ.get("PBCONFIG") else []),
                 legacy_default()]
    return [next((p for p in fallbacks if p.exists()), kube_default())]


def config_path(explicit: str | None = None) -> Path:
    """The first file of the search (what `pbctl config` shows when it is one file)."""
    return search_paths(explicit)[0]


def user_kubeconfig_path() -> Path:
    """Where a tool adds its context, as kind and kubectl do: $KUBECONFIG's first file, else ~/.kube/config."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    return Path(listed[0]) if listed else kube_default()


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read config: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: not a kubeconfig (expected a mapping)")
    return doc


def merged(paths: list[Path]) -> dict[str, Any]:
    """The kubeconfigs at `paths` (missing ones skipped) merged as kubectl merges KUBECONFIG."""
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": [],
                           "current-context": ""}
    for path in paths:
        if not path.exists():
            continue
        doc = _read(path)
        for section, _ in _SECTIONS:
            have = {e.get("name") for e in out[section]}
            for entry in doc.get(section) or []:
                if isinstance(entry, dict) and entry.get("name") not in have:
                    out[section].append(entry)
                    have.add(entry.get("name"))
        if not out["current-context"] and doc.get("current-context"):
            out["current-context"] = doc["current-context"]
    return out


@dataclass(frozen=True)
class ClientCert:
    """A user's client certificate for a kubeconfig: embedded (`*-data`, as kubeadm's admin.conf) or, with
    `by_path`, referenced by file (as kubelet.conf), so a renewed certificate is picked up on restart."""
    cert: Path
    key: Path
    by_path: bool = False

    def user_entry(self) -> dict[str, str]:
        if self.by_path:
            return {"client-certificate": str(self.cert), "client-key": str(self.key)}
        return {"client-certificate-data": base64.b64encode(self.cert.read_bytes()).decode(),
                "client-key-data": base64.b64encode(self.key.read_bytes()).decode()}


def render_kubeconfig(https_server: str, grpc_address: str, token: str, ca_pem: bytes, *,
                      name: str = "default", namespace: str = "default", cert: ClientCert | None = None) -> str:
    """A standard kubeconfig (kubectl and the official clients use it as is) that also names the gRPC address;
    the user is the client certificate and/or the token given."""
    cluster: dict[str, Any] = {"server": https_server}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    cluster["extensions"] = [{"name": GRPC_EXTENSION, "extension": {"address": grpc_address}}]
    user: dict[str, str] = {**(cert.user_entry() if cert else {}), **({"token": token} if token else {})}
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_kubeconfig(path: Path, https_server: str, grpc_address: str, token: str, ca_pem: bytes, *,
                     name: str = "default", cert: ClientCert | None = None) -> None:
    """Write a standard kubeconfig (see render_kubeconfig) readable by its owner only (it holds a credential)."""
    write_text(path, render_kubeconfig(https_server, grpc_address, token, ca_pem, name=name, cert=cert))


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _named(items: Any, name: str, what: str, where: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            body = item.get(what)
            return body if isinstance(body, dict) else {}
    raise ConfigError(f"{where}: no {what} named {name!r}")


def load(explicit: str | None = None, *, context: str | None = None, server: str | None = None,
         token: str | None = None) -> ClientConfig:
    """Resolve the effective config; explicit server/token flags override the file."""
    paths = search_paths(explicit)
    if not any(p.exists() for p in paths):
        if server:
            return ClientConfig(server=server, token=token or "")
        raise ConfigError(f"no kubeconfig at {os.pathsep.join(map(str, paths))}: start pb-apiserver (it writes "
                          f"<data-dir>/admin.conf) or `pbctl lab up`, or point --kubeconfig or KUBECONFIG at one")
    doc = merged(paths)
    where = os.pathsep.join(str(p) for p in paths if p.exists())
    ctx_name = context or doc.get("current-context") or ""
    if not ctx_name and server:  # explicit flags and a kubeconfig with no current context (kind's after delete)
        return ClientConfig(server=server, token=token or "")
    ctx_name = ctx_name or "default"
    ctx = _named(doc.get("contexts"), ctx_name, "context", where)
    cluster = _named(doc.get("clusters"), ctx.get("cluster", ctx_name), "cluster", where)
    user = _named(doc.get("users"), ctx.get("user", ctx_name), "user", where) if ctx.get("user") else {}
    srv = server or grpc_address(cluster)
    if not srv:
        raise ConfigError(f"{where}: cluster {ctx.get('cluster')!r} has no server")
    https = str(cluster.get("server") or "")
    return ClientConfig(server=str(srv), token=token or _token(user), namespace=str(ctx.get("namespace") or "default"),
                        context=ctx_name, path=where, https_server=https if "://" in https else "",
                        ca_pem=_ca(cluster), cert_pem=_pem(user, "client-certificate"),
                        key_pem=_pem(user, "client-key"))


def _token(user: dict[str, Any]) -> str:
    if user.get("token"):
        return str(user["token"])
    if user.get("tokenFile"):
        try:
            return Path(str(user["tokenFile"])).read_text().strip()
        except OSError as e:
            raise ConfigError(f"cannot read tokenFile: {e}") from None
    return ""


def _ca(cluster: dict[str, Any]) -> bytes:
    return _pem(cluster, "certificate-authority")


def _pem(entry: dict[str, Any], field: str) -> bytes:
    """`<field>-data` (base64 PEM) or the file `<field>` names, as kubectl reads them; b"" when neither is set."""
    if entry.get(f"{field}-data"):
        try:
            return base64.b64decode(str(entry[f"{field}-data"]), validate=True)
        except ValueError as e:
            raise ConfigError(f"{field}-data: not base64: {e}") from None
    if entry.get(field):
        try:
            return Path(str(entry[field])).read_bytes()
        except OSError as e:
            raise ConfigError(f"{field}: cannot read {entry[field]}: {e.strerror}") from None
    return b""


def grpc_address(cluster: dict[str, Any]) -> str:
    """Where pbctl connects: the cluster's pybernetes.io/grpc extension; else the https server's host on
    ports.APISERVER_GRPC; else a bare host:port server (the older gRPC-only shape) as it is."""
    for ext in cluster.get("extensions") or []:
        if isinstance(ext, dict) and ext.get("name") == GRPC_EXTENSION:
            body = ext.get("extension")
            if isinstance(body, dict) and body.get("address"):
                return str(body["address"])
    srv = str(cluster.get("server") or "")
    if "://" not in srv:
        return srv
    host = urlsplit(srv).hostname or ""
    if not host:
        return ""
    return f"[{host}]:{ports.APISERVER_GRPC}" if ":" in host else f"{host}:{ports.APISERVER_GRPC}"


# ---- a tool's entries in the user's kubeconfig (the lab's, as kind's) ---------------------------------


def merge_context(path: Path, source: Path, name: str) -> None:
    """Copy `source`'s current cluster, user and context into the kubeconfig at `path` under `name` and make
    it current; other entries stay as they are. A missing `path` is created, owner-only."""
    src = _read(source)
    ctx_name = src.get("current-context") or ""
    ctx = dict(_named(src.get("contexts"), ctx_name, "context", str(source)))
    bodies: dict[str, dict[str, Any]] = {
        "cluster": _named(src.get("clusters"), ctx.get("cluster", ""), "cluster", str(source)),
        "user": _named(src.get("users"), ctx.get("user", ""), "user", str(source)),
        "context": {**ctx, "cluster": name, "user": name}}
    empty: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    doc = _read(path) if path.exists() else empty
    for section, what in _SECTIONS:
        kept = [e for e in doc.get(section) or [] if not (isinstance(e, dict) and e.get("name") == name)]
        entry: dict[str, Any] = {"name": name, what: bodies[what]}
        doc[section] = [*kept, entry]
    doc["current-context"] = name
    _rewrite(path, doc)


def remove_context(path: Path, name: str) -> bool:
    """Remove the cluster, user and context called `name` from the kubeconfig at `path` (and current-context
    when it names it, as `kind delete cluster` does); True when something was removed."""
    if not path.exists():
        return False
    doc = _read(path)
    changed = False
    for section, _ in _SECTIONS:
        entries = doc.get(section) or []
        kept = [e for e in entries if not (isinstance(e, dict) and e.get("name") == name)]
        changed |= len(kept) != len(entries)
        doc[section] = kept
    if doc.get("current-context") == name:
        doc["current-context"] = ""
        changed = True
    if changed:
        _rewrite(path, doc)
    return changed


def _rewrite(path: Path, doc: dict[str, Any]) -> None:
    """Write `doc` to `path` keeping an existing file's mode (0600 for a new one)."""
    text = yaml.safe_dump(doc, sort_keys=False)
    if not path.exists():
        write_text(path, text)
        return
    mode = path.stat().st_mode & 0o777
    write_text(path, text)
    os.chmod(path, mode)
