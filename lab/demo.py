"""The lab demo: apply examples/, wait for the rollout, then show requests balanced across pods and nodes.

    python -m lab.demo [--dir LAB_DIR] [--requests 12] [--from-node node-1] [--up]

`make lab` runs `pbctl lab up && python -m lab.demo`; `--up` does both in one command
(brings the lab up first, a no-op when it is already up).

Requests are sent from inside a node's network namespace (curl through `nsenter --net`) to the
`hello` ClusterIP and to <node-ip>:30080 of every node in turn; each answer names the pod that served
it, printed with the node that pod runs on.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from lab import lifecycle
from lab.errors import LabError
from lab.health import http_get
from lab.state import LabState
from lab.topology import DEFAULT_DIR, Plan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEPLOYMENT = "hello"
SERVICE = "hello"
NODEPORT = 30080  # the nodePort examples/demo.yaml gives the hello Service


async def pbctl(admin: Path, *argv: str) -> int:
    from pbctl.main import run

    return await run(["--config", str(admin), *argv])


async def pods_by_name(admin: Path) -> dict[str, tuple[str, str]]:
    """pod name -> (node, pod IP) for the demo's pods."""
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client import config as client_config
    from pybernetes.client.client import Client

    async with Client.from_config(client_config.load(str(admin)), timeout=10) as c:
        pods = (await c.list(core.Pod, namespace="default", label_selector=f"app={DEPLOYMENT}")).items
    return {p.metadata.name: (p.spec.node_name, p.status.pod_ip) for p in pods
            if not p.metadata.HasField("deletion_timestamp")}


async def ready_endpoints(admin: Path, want: int, timeout: float = 60.0) -> list[str]:
    from pybernetes import errors
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client import config as client_config
    from pybernetes.client.client import Client

    deadline = time.monotonic() + timeout
    async with Client.from_config(client_config.load(str(admin)), timeout=10) as c:
        while True:
            try:
                ep = await c.get(core.Endpoints, SERVICE, namespace="default")
                ips = [a.ip for s in ep.subsets for a in s.addresses]
            except errors.NotFound:
                ips = []
            if len(ips) >= want or time.monotonic() > deadline:
                return ips
            await asyncio.sleep(0.5)


async def cluster_ip(admin: Path) -> str:
    from pybernetes.api.core.v1 import core_pb2 as core
    from pybernetes.client import config as client_config
    from pybernetes.client.client import Client

    async with Client.from_config(client_config.load(str(admin)), timeout=10) as c:
        svc = await c.get(core.Service, SERVICE, namespace="default")
    return svc.spec.cluster_ip


async def request(netns: str, url: str) -> str:
    ok, body = await http_get(netns, url, timeout=2.0)
    if not ok:
        return f"(no answer: {body.strip()[:80] or 'failed'})"
    return body.strip().removeprefix("hello from ").strip()


async def proxies_programmed(netns: str, vip_url: str, nodeport_urls: list[str], pods: set[str],
                             say: Callable[[str], None], timeout: float = 30.0) -> None:
    """Waits until every pod has answered the ClusterIP and every node's NodePort has answered.

    The Endpoints are ready in the API before every node's pb-proxy has programmed them: each proxy applies
    a change within its min sync period (1 s, as kube-proxy). Requests sent in between would show fewer
    pods, or a NodePort refusing, which is the cluster converging rather than what the demo shows."""
    start = time.monotonic()
    seen: set[str] = set()
    waiting = set(nodeport_urls)
    while True:
        for url in [vip_url, *sorted(waiting)]:
            pod = await request(netns, url)
            if pod in pods and url == vip_url:
                seen.add(pod)
            elif pod in pods:
                waiting.discard(url)
        if pods <= seen and not waiting:
            say(f"every node's pb-proxy has programmed the Services ({time.monotonic() - start:.1f} s)")
            return
        if time.monotonic() - start > timeout:
            raise LabError(f"the Services did not converge within {timeout:.0f} s: pods answered "
                                   f"{sorted(seen)} of {sorted(pods)}; NodePorts silent {sorted(waiting)}")
        await asyncio.sleep(0.2)


async def run_demo(lab_dir: Path, *, requests: int = 12, from_node: str = "node-1", apply: bool = True,
                   say: Callable[[str], None] = print) -> dict[str, collections.Counter[str]]:
    """Returns {"clusterip": Counter(pod), "nodeport": Counter(pod)} of who answered."""
    st = LabState.load(lab_dir.resolve())
    if st is None or not st.complete:
        raise LabError(f"no running lab in {lab_dir}; run `pbctl lab up` first")
    admin = Path(st.dir) / "admin.conf"
    nodes = {n["name"]: n for n in st.info.get("nodes", [])}
    if from_node not in nodes:
        raise LabError(f"no node {from_node!r} in the lab ({', '.join(nodes)})")
    src = nodes[from_node]["netns"]
    if apply:
        say(f"$ pbctl apply -f {EXAMPLES}")
        if await pbctl(admin, "apply", "-f", str(EXAMPLES)) != 0:
            raise LabError("apply failed")
    say(f"$ pbctl rollout status deployment/{DEPLOYMENT}")
    if await pbctl(admin, "rollout", "status", f"deployment/{DEPLOYMENT}", "--timeout", "120s") != 0:
        raise LabError("rollout did not finish")
    say("$ pbctl get pods -o wide")
    await pbctl(admin, "get", "pods", "-l", f"app={DEPLOYMENT}", "-o", "wide")
    pods = await pods_by_name(admin)
    await ready_endpoints(admin, len(pods))
    proxies = [p for p in st.find("proxy") if p.alive()]
    answered: dict[str, collections.Counter[str]] = {"clusterip": collections.Counter(),
                                                     "nodeport": collections.Counter()}

    def show(i: int, what: str, pod: str) -> None:
        node = pods.get(pod, ("?", ""))[0]
        say(f"  {i:2d}  {what:<24} -> {pod}  (on {node})")

    if not proxies:
        say("pb-proxy is not available yet: no ClusterIP/NodePort; asking each pod directly instead")
        for i in range(requests):
            _name, (_, ip) = sorted(pods.items())[i % len(pods)]
            pod = await request(src, f"http://{ip}:8080/")
            answered["clusterip"][pod] += 1
            show(i + 1, f"{ip}:8080", pod)
        return answered
    vip = await cluster_ip(admin)
    ips = [n["ip"] for n in nodes.values()]
    await proxies_programmed(src, f"http://{vip}:80/", [f"http://{ip}:{NODEPORT}/" for ip in ips], set(pods), say)
    say(f"\n{requests} requests from {from_node} to the ClusterIP {vip}:80:")
    for i in range(requests):
        pod = await request(src, f"http://{vip}:80/")
        answered["clusterip"][pod] += 1
        show(i + 1, f"{vip}:80", pod)
    say(f"\n{requests} requests from {from_node} to <node-ip>:{NODEPORT} of every node in turn:")
    for i in range(requests):
        target = f"{ips[i % len(ips)]}:{NODEPORT}"
        pod = await request(src, f"http://{target}/")
        answered["nodeport"][pod] += 1
        show(i + 1, target, pod)
    for kind, counts in answered.items():
        spread = ", ".join(f"{p} ({pods.get(p, ('?', ''))[0]}): {n}" for p, n in sorted(counts.items()))
        say(f"{kind}: {spread}")
    return answered


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lab.demo", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, default=Path(os.environ.get("PB_LAB_DIR") or DEFAULT_DIR))
    p.add_argument("--requests", type=int, default=12)
    p.add_argument("--from-node", default="node-1")
    p.add_argument("--no-apply", dest="apply", action="store_false")
    p.add_argument("--up", action="store_true", help="bring the lab up first (default profile, 3 nodes)")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)

    async def go() -> dict[str, collections.Counter[str]]:
        if a.up and await lifecycle.up(Plan(dir=a.dir)) != 0:
            raise LabError("lab up failed")
        return await run_demo(a.dir, requests=a.requests, from_node=a.from_node, apply=a.apply)

    try:
        answered = asyncio.run(go())
    except LabError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    failed = sum(n for c in answered.values() for p, n in c.items() if p.startswith("(no answer"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
