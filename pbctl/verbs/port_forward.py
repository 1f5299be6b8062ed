"""port-forward: local ports to ports of a pod, as kubectl port-forward: each local connection is one stream
through the apiserver to the pod's kubelet, which connects inside the pod's network namespace.

`pbctl port-forward pod/web 8080:80 [9090]` (`deployment/NAME`, `service/NAME`: the first running pod they
select, and a Service's port maps to its targetPort, as kubectl does). `:80` picks a free local port. Runs until
interrupted; prints `Forwarding from 127.0.0.1:8080 -> 80` per port and `Handling connection for 8080` per
connection, as kubectl.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from pbctl import verb
from pbctl.common import CliError, Ctx
from pybernetes import errors
from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client

CHUNK = 32 * 1024


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", nargs="?", default="", metavar="TYPE/NAME")
    p.add_argument("ports", nargs="*", metavar="[LOCAL_PORT:]REMOTE_PORT")
    p.add_argument("--address", default="localhost", help="addresses to listen on (comma separated)")


def parse_port(spec: str) -> tuple[int, str]:
    """(local port, remote port as written: a number or a port name) of `[LOCAL:]REMOTE`; local 0 = any."""
    local, sep, remote = spec.partition(":")
    if not sep:
        local, remote = spec, spec
    try:
        lp = int(local) if local else 0
    except ValueError:
        raise CliError(f"invalid local port {local!r} in {spec!r}") from None
    if not 0 <= lp < 65536 or not remote:
        raise CliError(f"invalid port specification {spec!r}")
    return lp, remote


async def _pod_for(client: Client, namespace: str, target: str) -> tuple[core.Pod, core.Service | None]:
    kind, _, name = target.rpartition("/")
    kind = kind.lower() or "pod"
    if kind in ("pod", "pods", "po"):
        return await client.get(core.Pod, name, namespace=namespace), None
    svc: core.Service | None = None
    if kind in ("service", "services", "svc"):
        svc = await client.get(core.Service, name, namespace=namespace)
        selector = dict(svc.spec.selector)
    elif kind in ("deployment", "deployments", "deploy"):
        selector = dict((await client.get(apps.Deployment, name, namespace=namespace)).spec.selector.match_labels)
    elif kind in ("replicaset", "replicasets", "rs"):
        selector = dict((await client.get(apps.ReplicaSet, name, namespace=namespace)).spec.selector.match_labels)
    else:
        raise CliError(f"cannot port-forward to {kind}: use pod/, deployment/, replicaset/ or service/")
    if not selector:
        raise CliError(f"{target} selects no pods")
    pods = (await client.list(core.Pod, namespace=namespace,
                              label_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())))).items
    running = sorted((p for p in pods if p.status.phase == "Running"), key=lambda p: p.metadata.name)
    if not running:
        raise CliError(f"no running pod for {target}")
    return running[0], svc


def _remote_port(pod: core.Pod, svc: core.Service | None, remote: str) -> int:
    if svc is not None:  # a Service port -> its targetPort, as kubectl translates it
        for sp in svc.spec.ports:
            if str(sp.port) == remote or sp.name == remote:
                tp = sp.target_port
                remote = (tp.str_val or str(tp.int_val)) if (tp.str_val or tp.int_val) else str(sp.port)
                break
        else:
            raise CliError(f"service {svc.metadata.name} does not have a service port {remote}")
    if remote.isdigit():
        return int(remote)
    for c in pod.spec.containers:
        for cp in c.ports:
            if cp.name == remote:
                return cp.container_port
    raise CliError(f"pod {pod.metadata.name} has no container port named {remote!r}")


async def _serve_connection(client: Client, pod: core.Pod, port: int, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
    async def upstream() -> AsyncIterator[bytes]:
        while data := await reader.read(CHUNK):
            yield data

    try:
        async for chunk in client.pod_port_forward(pod.metadata.namespace, pod.metadata.name, port, upstream()):
            writer.write(chunk)
            await writer.drain()
    except errors.ApiError as e:
        print(f"E: error forwarding port {port} to pod {pod.metadata.name}: {e.message}", file=sys.stderr,
              flush=True)
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError):
            writer.close()


async def run_port_forward(ctx: Ctx, args: argparse.Namespace) -> int:
    """pbctl port-forward TYPE/NAME [LOCAL_PORT:]REMOTE_PORT..."""
    if not args.target or not args.ports:
        raise CliError("TYPE/NAME and list of ports are required for port-forward")
    pod, svc = await _pod_for(ctx.client, ctx.namespace, args.target)
    if pod.status.phase != "Running":
        raise CliError(f"unable to forward port because pod is not running. Current status={pod.status.phase}")
    hosts = ["127.0.0.1" if a == "localhost" else a for a in args.address.split(",") if a]
    servers: list[asyncio.Server] = []
    for spec in args.ports:
        local, remote = parse_port(spec)
        port = _remote_port(pod, svc, remote)

        async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, port: int = port) -> None:
            sock = w.get_extra_info("sockname")
            print(f"Handling connection for {sock[1] if sock else port}", flush=True)
            await _serve_connection(ctx.client, pod, port, r, w)

        for host in hosts:
            try:
                server = await asyncio.start_server(handler, host, local)
            except OSError as e:
                raise CliError(f"unable to listen on {host}:{local}: {e.strerror}") from None
            local = server.sockets[0].getsockname()[1]  # the same local port on every address
            servers.append(server)
            print(f"Forwarding from {host}:{local} -> {port}", flush=True)
    try:
        await asyncio.gather(*(s.serve_forever() for s in servers))
    finally:
        for s in servers:
            s.close()
    return 0


VERB = verb.Verb("port-forward", "Forward one or more local ports to a pod", arguments, run_port_forward,
                 rank=145)
