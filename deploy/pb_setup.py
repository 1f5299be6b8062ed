#!/usr/bin/env python3
"""Host setup helpers for deploy/install.sh, run with the installed venv's python:

    /opt/pybernetes/bin/python deploy/pb_setup.py containerd-config --out /etc/pybernetes/containerd/config.toml
    ... token --out /etc/pybernetes/token                      # a cluster token (kept if the file exists)
    ... client-config --out F --server HOST:PORT --token-file T
    ... control-plane-tokens --tokens-csv CSV --node-token-file T --config-dir /etc/pybernetes --server HOST:PORT
    ... nodes --config admin.conf node-1=10.244.1.0/24 ...      # Node objects with a fixed podCIDR (as the lab)

The containerd config is node_agent.containerd.render_config with system paths (root and CNI files
under /var/lib/pybernetes/containerd, state and socket under /run/pybernetes/containerd). A wheel install
does not carry deploy/containerd/config.toml.tmpl, so the template beside this script is used when the
package's own path does not exist.
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


def client_config(a: argparse.Namespace) -> None:
    from pybernetes.client import config

    tok = a.token or read_token(a.token_file)
    config.write(Path(a.out), a.server, tok)
    print(f"client config: {a.out} -> {a.server}")


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
    from pybernetes.client import config

    csv_path = Path(a.tokens_csv)
    have = _csv_tokens(csv_path)
    node_token = read_token(a.node_token_file)
    wanted = [("scheduler", "system:kube-scheduler", ""),
              ("controller-manager", "system:kube-controller-manager", "")]
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
    for uid, tok in tokens.items():
        config.write(conf_dir / f"{uid}.conf", a.server, tok)
    print(f"tokens: {csv_path} (scheduler, controller-manager, nodes); client configs in {conf_dir}")


async def _nodes(a: argparse.Namespace) -> None:
    from pybernetes import errors
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client import config
    from pybernetes.client.client import Client

    async with Client.from_config(config.load(a.config), timeout=10) as c:
        for spec in a.nodes:
            name, _, cidr = spec.partition("=")
            node = core.Node()
            node.metadata.name = name
            node.spec.pod_cidr = cidr
            node.spec.pod_cidrs.append(cidr)
            with contextlib.suppress(errors.AlreadyExists):
                await c.create(node)
            print(f"node {name}: podCIDR {cidr}")


def main(argv: list[str] | None = None) -> None:
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
    cc = sub.add_parser("client-config", help="write a client config (0600)")
    cc.add_argument("--out", required=True)
    cc.add_argument("--server", required=True)
    g = cc.add_mutually_exclusive_group(required=True)
    g.add_argument("--token-file")
    g.add_argument("--token")
    cc.set_defaults(fn=client_config)
    cp = sub.add_parser("control-plane-tokens", help="component and node tokens for the apiserver")
    cp.add_argument("--tokens-csv", required=True)
    cp.add_argument("--node-token-file", required=True)
    cp.add_argument("--config-dir", required=True)
    cp.add_argument("--server", required=True)
    cp.set_defaults(fn=control_plane_tokens)
    n = sub.add_parser("nodes", help="create Node objects with a fixed podCIDR (name=cidr ...)")
    n.add_argument("--config", default=None)
    n.add_argument("nodes", nargs="+")
    n.set_defaults(fn=lambda a: asyncio.run(_nodes(a)))
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
