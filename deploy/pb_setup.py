#!/usr/bin/env python3
"""Host setup helpers for deploy/install.sh, run with the installed venv's python:

    /opt/pybernetes/bin/python deploy/pb_setup.py containerd-config --out /etc/pybernetes/containerd/config.toml
    ... token --out /etc/pybernetes/token                      # a cluster token (kept if the file exists)
    ... client-config --out F --server HOST[:6443] [--token-file T] [--ca-file CA] [--client-cert C --client-key K]
    ... node-pki --pki-dir DIR --name node-1 --out DIR/nodes/node-1   # a node's own certificates (kubelet, proxy)
    ... control-plane-tokens --tokens-csv CSV --node-token-file T --config-dir /etc/pybernetes --server HOST[:6443] \
            --pki-dir /var/lib/pybernetes/apiserver/pki --advertise-address IP
    ... nodes --config admin.conf node-1=10.244.1.0/24 ...      # Node objects with a fixed podCIDR (as the lab)
    ... kube-dns --config admin.conf --cluster-ip 10.96.0.10 --address IP   # the Service in front of pb-dns
    ... dns-upstreams [--resolv-conf /etc/resolv.conf]        # the host's nameservers, comma-separated

The containerd config is node_agent.containerd.render_config with system paths (root and CNI files
under /var/lib/pybernetes/containerd, state and socket under /run/pybernetes/containerd). A wheel install
does not carry deploy/containerd/config.toml.tmpl, so the template beside this script is used when the
package's own path does not exist.

Client configs are standard kubeconfigs: the REST API at https://HOST:6443 (--server) and the gRPC API at
HOST:6442 in the cluster's pybernetes.io/grpc extension. The control plane makes the apiserver's CA and
serving certificate before the apiserver starts (it reuses them), and a client certificate per component
(system:kube-scheduler, system:kube-controller-manager, coredns's service account) that its kubeconfig names
by path, as kubeadm does. The apiserver's gRPC port requires a client certificate signed by that CA, so a node
needs its own: `node-pki` issues kubelet-<name> (system:node:<name> in system:nodes) and proxy
(system:kube-proxy) from the CA (Vagrant: on the host, before provisioning; by hand: on the control plane,
then copy that node's directory alone to it), and install.sh node --client-cert/--proxy-client-cert name them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN_DIR = Path("/run/pybernetes/containerd")
BASE_DIR = Path("/var/lib/pybernetes/containerd")


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def containerd_config(a: argparse.Namespace) -> None:
    from node_agent import containerd as ctd

    if not ctd.TEMPLATE.exists():
        template = Path(a.template) if a.template else HERE / "containerd" / "config.toml.tmpl"
        ctd.TEMPLATE = template  # type: ignore[misc]  # a Final default; the installer points it at its copy

    run_dir = Path(a.run_dir)

    @dataclass(frozen=True)
    class SystemPaths(ctd.NodePaths):
        """NodePaths with the volatile parts (state, sockets) under /run, as containerd.service has them."""

        @property
        def state(self) -> Path:
            return run_dir / "state"

        @property
        def socket(self) -> Path:
            return run_dir / "containerd.sock"

    paths = SystemPaths(Path(a.base))
    text = ctd.render_config(paths, sandbox_image=a.sandbox_image, log_level=a.log_level)
    if a.out == "-":
        sys.stdout.write(text)
        return
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    # The registry mirrors (docker.io, registry.k8s.io, k8s.gcr.io -> the --registry) that config names.
    ctd.write_hosts(paths.certs_dir, a.registry)
    print(f"containerd config: {out} (socket {paths.socket}, root {paths.root}, CNI conf {paths.cni_conf_dir},"
          f" registry hosts {paths.certs_dir})")


def read_token(path: str) -> str:
    tok = Path(path).read_text().strip().splitlines()
    if not tok or not tok[0].strip():
        sys.exit(f"{path}: empty token file")
    return tok[0].strip()


def token(a: argparse.Namespace) -> None:
    out = Path(a.out)
    if out.exists() and out.read_text().strip():
        print(f"token: keeping {out}")
        return
    _write_private(out, secrets.token_hex(24) + "\n")
    print(f"token: wrote {out}")


def write_kubeconfig(out: Path, server: str, grpc_port: int, token: str, ca_pem: bytes,
                     cert: tuple[Path, Path] | None = None) -> str:
    """A kubeconfig at `out` for the apiserver at `server` (HOST or HOST:PORT of the REST API), its user the
    client certificate and key files `cert` and/or `token`; what it names."""
    from pybernetes import ports
    from pybernetes.client import config

    host, _, port = server.removeprefix("https://").rstrip("/").rpartition(":")
    if not host or not port.isdigit():
        host, port = server.removeprefix("https://").rstrip("/"), str(ports.APISERVER)
    client_cert = config.ClientCert(cert[0], cert[1], by_path=True) if cert else None
    config.write_kubeconfig(out, f"https://{host}:{port}", f"{host}:{grpc_port}", token, ca_pem, cert=client_cert)
    return f"https://{host}:{port}, gRPC {host}:{grpc_port}"


def client_config(a: argparse.Namespace) -> None:
    tok = a.token or (read_token(a.token_file) if a.token_file else "")
    ca = Path(a.ca_file).read_bytes() if a.ca_file else b""
    if bool(a.client_cert) != bool(a.client_key):
        sys.exit("client-config: --client-cert and --client-key go together")
    cert = (Path(a.client_cert).resolve(), Path(a.client_key).resolve()) if a.client_cert else None
    if not tok and cert is None:
        sys.exit("client-config: give --client-cert/--client-key, --token or --token-file")
    print(f"client config: {a.out} -> {write_kubeconfig(Path(a.out), a.server, a.grpc_port, tok, ca, cert)}")


def node_pki(a: argparse.Namespace) -> None:
    """A node's credentials from the cluster CA in --pki-dir (created there when missing): ca.crt,
    kubelet.{crt,key} (system:node:<name> in system:nodes) and proxy.{crt,key} (system:kube-proxy) in --out."""
    import shutil

    from pybernetes import pkiutil, tls

    pki, out = Path(a.pki_dir), Path(a.out)
    pkiutil.ensure_ca(pki)
    for stem, user, groups in (("kubelet", f"system:node:{a.name}", [tls.NODES_GROUP]),
                               ("proxy", "system:kube-proxy", [])):
        pair = pkiutil.ensure_client_cert(pki, f"{stem}-{a.name}", user, groups)
        tls.write_file(out / f"{stem}.crt", pair.cert.read_bytes(), 0o644)
        tls.write_file(out / f"{stem}.key", pair.key.read_bytes(), 0o600)
    shutil.copyfile(pki / "ca.crt", out / "ca.crt")
    print(f"node {a.name}: {out}/kubelet.crt (system:node:{a.name}), {out}/proxy.crt (system:kube-proxy), ca.crt")


# The control plane's components serving /metrics over HTTPS: <who>-serving in the pki dir -> common name.
SERVING = {"scheduler": "kube-scheduler", "controller-manager": "kube-controller-manager", "dns": "coredns"}


def metrics_pki(a: argparse.Namespace) -> None:
    """The certificates behind the control plane's /metrics (pybernetes.secureserving), from the cluster CA in
    --pki-dir: <who>-serving.{crt,key} for the scheduler, the controller manager and pb-dns (SANs localhost,
    127.0.0.1, --advertise-address), and Prometheus' own client certificate (user prometheus, group
    system:monitoring), copied with ca.crt into --out for the prometheus user. Never an etcd-CA certificate:
    etcd's metrics stay plain HTTP on loopback."""
    from pybernetes import pkiutil, tls

    pki = Path(a.pki_dir)
    pkiutil.ensure_ca(pki)
    dns, ips = tls.serving_names([a.advertise_address], cluster_names=False)
    for who, cn in SERVING.items():
        pkiutil.ensure_cert(pki, f"{who}-serving", common_name=cn, server=True, dns=dns, ips=ips)
    pair = pkiutil.ensure_client_cert(pki, "prometheus", "prometheus", ["system:monitoring"])
    if a.out:
        out = Path(a.out)
        tls.write_file(out / "ca.crt", (pki / "ca.crt").read_bytes(), 0o644)
        tls.write_file(out / "prometheus.crt", pair.cert.read_bytes(), 0o644)
        tls.write_file(out / "prometheus.key", pair.key.read_bytes(), 0o600)
    print(f"metrics: {', '.join(f'{w}-serving.crt' for w in SERVING)} in {pki}; prometheus.crt (system:monitoring)"
          + (f" in {a.out}" if a.out else ""))


def _csv_tokens(path: Path) -> dict[str, str]:
    """uid -> token of the lines already in the apiserver's tokens file."""
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split(",")
            if len(parts) >= 3 and not line.startswith("#"):
                out[parts[2].strip()] = parts[0].strip()
    return out


def control_plane_tokens(a: argparse.Namespace) -> None:
    """Tokens for the scheduler, the controller manager and the nodes in the apiserver's tokens file.

    The admin line is left to the apiserver: on first start it adds one (group system:masters) and
    writes admin.conf with it. Re-running keeps every existing token.
    """
    from pybernetes import pkiutil

    csv_path = Path(a.tokens_csv)
    have = _csv_tokens(csv_path)
    node_token = read_token(a.node_token_file)
    wanted = [("scheduler", "system:kube-scheduler", ""),
              ("controller-manager", "system:kube-controller-manager", ""),
              ("dns", "system:serviceaccount:kube-system:coredns", "")]
    lines: list[str] = []
    if csv_path.exists():
        lines = [ln for ln in csv_path.read_text().splitlines() if ln.strip()]
    tokens: dict[str, str] = {}
    for uid, user, groups in wanted:
        tok = have.get(uid) or secrets.token_hex(24)
        tokens[uid] = tok
        if uid not in have:
            lines.append(f'{tok},{user},{uid},"{groups}"' if groups else f"{tok},{user},{uid}")
    if have.get("nodes") != node_token:
        lines = [ln for ln in lines if ln.split(",")[2:3] != ["nodes"]]
        lines.append(f'{node_token},system:node-bootstrap,nodes,"system:nodes"')
    _write_private(csv_path, "\n".join(lines) + "\n")
    conf_dir = Path(a.config_dir)
    pki = Path(a.pki_dir) if a.pki_dir else None
    ca = pkiutil.ensure_apiserver_pki(pki, [a.advertise_address]).ca_pem() if pki else b""
    users = {uid: (user, groups) for uid, user, groups in wanted}
    for uid, tok in tokens.items():
        # With the PKI: the component's own client certificate (gRPC requires one), as kubeadm's kubeconfigs.
        pair = pkiutil.ensure_client_cert(pki, uid, users[uid][0], [g for g in [users[uid][1]] if g]) if pki else None
        write_kubeconfig(conf_dir / f"{uid}.conf", a.server, a.grpc_port, "" if pair else tok, ca,
                         (pair.cert, pair.key) if pair else None)
    print(f"tokens: {csv_path} (scheduler, controller-manager, dns, nodes); client configs in {conf_dir}")


async def _nodes(a: argparse.Namespace) -> None:
    from pybernetes import errors
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client import config
    from pybernetes.client.client import Client

    async with Client.from_config(config.load(a.config), timeout=30) as c:
        for spec in a.nodes:
            name, _, cidr = spec.partition("=")
            node = core.Node()
            node.metadata.name = name
            node.spec.pod_cidr = cidr
            node.spec.pod_cidrs.append(cidr)
            with contextlib.suppress(errors.AlreadyExists):
                await c.create(node)
            print(f"node {name}: podCIDR {cidr}")


async def _kube_dns(a: argparse.Namespace) -> None:
    from clusterdns import kubedns
    from pybernetes.client import config
    from pybernetes.client.client import Client

    async with Client.from_config(config.load(a.config), timeout=30) as c:
        await kubedns.publish(c, a.cluster_ip, a.address)
    print(f"service {kubedns.NAMESPACE}/{kubedns.NAME}: {a.cluster_ip} -> {a.address}:53")


def dns_upstreams(a: argparse.Namespace) -> None:
    """The host's nameservers for pb-dns --upstream (loopback ones left out: a stub resolver on the host is not
    reachable the same way from the DNS process's clients' point of view, and may be pb-dns itself)."""
    servers = []
    with contextlib.suppress(OSError):
        for line in Path(a.resolv_conf).read_text().splitlines():
            f = line.split()
            if len(f) >= 2 and f[0] == "nameserver" and not f[1].startswith(("127.", "::1")):
                servers.append(f[1])
    print(",".join(servers))


def main(argv: list[str] | None = None) -> None:
    from pybernetes import ports

    p = argparse.ArgumentParser(prog="pb_setup.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("containerd-config", help="render the node's containerd config.toml")
    c.add_argument("--out", default="/etc/pybernetes/containerd/config.toml", help="'-' for stdout")
    c.add_argument("--base", default=str(BASE_DIR))
    c.add_argument("--run-dir", default=str(RUN_DIR))
    c.add_argument("--template", default="")
    c.add_argument("--sandbox-image", default="localhost:5000/pause:3.9")
    c.add_argument("--registry", default="localhost:5000")
    c.add_argument("--log-level", default="info")
    c.set_defaults(fn=containerd_config)
    t = sub.add_parser("token", help="write a random cluster token unless the file has one")
    t.add_argument("--out", required=True)
    t.set_defaults(fn=token)
    cc = sub.add_parser("client-config", help="write a kubeconfig (0600)")
    cc.add_argument("--out", required=True)
    cc.add_argument("--server", required=True, help="HOST[:PORT] of the REST API (port default 6443)")
    cc.add_argument("--grpc-port", type=int, default=ports.APISERVER_GRPC, help="the apiserver's gRPC port there")
    cc.add_argument("--ca-file", default="", help="the cluster CA (certificate-authority-data)")
    g = cc.add_mutually_exclusive_group()
    g.add_argument("--token-file")
    g.add_argument("--token")
    cc.add_argument("--client-cert", default="", help="the user's client certificate (named by path)")
    cc.add_argument("--client-key", default="", help="its key")
    cc.set_defaults(fn=client_config)
    npk = sub.add_parser("node-pki", help="a node's kubelet and proxy client certificates from the cluster CA")
    npk.add_argument("--pki-dir", required=True, help="where the cluster CA is (made there when missing)")
    npk.add_argument("--name", required=True, help="the node's name (system:node:<name>)")
    npk.add_argument("--out", required=True, help="the node's directory: ca.crt, kubelet.*, proxy.*")
    npk.set_defaults(fn=node_pki)
    cp = sub.add_parser("control-plane-tokens", help="component and node tokens for the apiserver")
    cp.add_argument("--tokens-csv", required=True)
    cp.add_argument("--node-token-file", required=True)
    cp.add_argument("--config-dir", required=True)
    cp.add_argument("--server", required=True, help="HOST[:PORT] of the REST API (port default 6443)")
    cp.add_argument("--grpc-port", type=int, default=ports.APISERVER_GRPC, help="the apiserver's gRPC port there")
    cp.add_argument("--pki-dir", default="", help="the apiserver's --cert-dir: its CA is made here if missing")
    cp.add_argument("--advertise-address", default="", help="an address the serving certificate covers")
    cp.set_defaults(fn=control_plane_tokens)
    mp = sub.add_parser("metrics-pki", help="serving certificates for the control plane's /metrics and "
                                            "Prometheus' client certificate (system:monitoring)")
    mp.add_argument("--pki-dir", required=True, help="where the cluster CA is (made there when missing)")
    mp.add_argument("--advertise-address", default="", help="an address the serving certificates cover")
    mp.add_argument("--out", default="", help="copy ca.crt and prometheus.{crt,key} here (Prometheus' pki)")
    mp.set_defaults(fn=metrics_pki)
    n = sub.add_parser("nodes", help="create Node objects with a fixed podCIDR (name=cidr ...)")
    n.add_argument("--config", default=None)
    n.add_argument("nodes", nargs="+")
    n.set_defaults(fn=lambda a: asyncio.run(_nodes(a)))
    kd = sub.add_parser("kube-dns", help="create kube-system/kube-dns in front of pb-dns")
    kd.add_argument("--config", default=None)
    kd.add_argument("--cluster-ip", default="10.96.0.10")
    kd.add_argument("--address", required=True, help="where pb-dns listens (port 53)")
    kd.set_defaults(fn=lambda a: asyncio.run(_kube_dns(a)))
    du = sub.add_parser("dns-upstreams", help="print the host's nameservers for pb-dns --upstream")
    du.add_argument("--resolv-conf", default="/etc/resolv.conf")
    du.set_defaults(fn=dns_upstreams)
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
