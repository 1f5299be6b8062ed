"""`lab up`, `lab down`, and `lab stop|start COMPONENT`: the plan that brings the lab up, the teardown, and
restarting recorded processes.

`up` runs a plan of steps (lab.control_plane, lab.nodes, lab.image_supply, lab.monitoring), printing one
progress line per step; independent steps (node bring-up) run concurrently. Everything made is recorded
in <lab-dir>/state.json (lab.state) before or right after it is made, so `down` removes exactly that,
also after a crash. lab.cli and lab.demo call these.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from lab import cluster_dns, control_plane, image_supply, netns, nodes
from lab.errors import LabError
from lab.health import health_check, wait_for
from lab.image_registry import Registry
from lab.images import LabImages
from lab.monitoring import maybe_prometheus
from lab.processes import run_cmd, spawn, start_relay, stop_all, stray_pids
from lab.state import LabState, ProcessRecord
from lab.status import print_summary
from lab.topology import COMPONENTS, CP_IP, CP_NAME, CP_NETNS, Plan
from pybernetes import ports

T = TypeVar("T")


class Progress:
    """Numbered progress lines: `[3/12] starting containerd on node-2 ... ok (0.3 s)`."""

    def __init__(self, total: int, out: Callable[[str], None] = print) -> None:
        self.total = total
        self.done = 0
        self.out = out

    async def step(self, title: str, fn: Callable[[], Awaitable[T]]) -> T:
        t0 = time.monotonic()
        try:
            result = await fn()
        except BaseException as e:
            self.done += 1
            if isinstance(e, subprocess.CalledProcessError):
                msg = f"{' '.join(map(str, e.cmd))} failed ({e.returncode}): {(e.stderr or e.stdout or '').strip()}"
            elif isinstance(e, asyncio.CancelledError):
                msg = "cancelled (another step failed)"
            else:
                msg = str(e) if isinstance(e, LabError | OSError | RuntimeError | TimeoutError) else repr(e)
            self.out(f"[{self.done}/{self.total}] {title} ... FAILED ({time.monotonic() - t0:.1f} s)\n  {msg}")
            raise
        self.done += 1
        note = f" — {result}" if isinstance(result, str) and result else ""
        self.out(f"[{self.done}/{self.total}] {title} ... ok ({time.monotonic() - t0:.1f} s){note}")
        return result


# ---- up ----------------------------------------------------------------------------------------


class Lab:
    """One `lab up`: the plan, the record it writes, and what steps hand to later steps."""

    def __init__(self, plan: Plan, out: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.out = out
        self.st = LabState(dir=str(plan.dir), profile=plan.profile.name, workers=plan.workers,
                           created_at=time.time())
        self.tokens: dict[str, str] = {}
        self.images: LabImages | None = None
        self.registry: Registry | None = None

    # - steps that hand something on -

    async def check_prerequisites(self) -> str:
        missing = [b for b in ("nsenter", "ip", "etcd", "containerd", "ctr", "runc", "curl", "skopeo", "umoci",
                               "docker-registry") if shutil.which(b) is None]
        if missing:
            raise LabError(f"missing programs: {', '.join(missing)} (see deploy/install-deps.sh)")
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network namespaces, containerd)")
        if not Path("/usr/lib/cni/bridge").exists():
            raise LabError("CNI plugins not found in /usr/lib/cni")
        taken = [ns for ns in self.plan.namespaces if netns.exists(ns)]
        if taken:
            raise LabError(f"namespaces {', '.join(taken)} already exist (another lab? run `lab down`"
                           " with its --dir)")
        return ""

    async def build_images(self) -> str:
        self.images, note = await image_supply.build_images(self.plan.image_cache, self.out)
        return note

    async def start_registry(self) -> str:
        assert self.images is not None
        self.registry = await image_supply.start_registry(self.plan, self.st, self.images)
        return f"{CP_IP}:{ports.REGISTRY}"

    async def push_images(self) -> str:
        assert self.registry is not None and self.images is not None
        return await image_supply.push_images(self.registry, self.images)

    async def start_apiserver(self) -> str:
        self.tokens = control_plane.write_credentials(self.plan)
        return await control_plane.start_apiserver(self.plan, self.st)

    # - the plan -

    async def up(self) -> None:
        plan, st = self.plan, self.st
        n = len(plan.nodes)
        # fixed steps + per node: containerd, kubelet, proxy
        total = 15 + n * 3
        pr = Progress(total, self.out)
        plan.dir.mkdir(parents=True, exist_ok=True)
        st.add_dir(plan.dir)
        st.info.update({"control_plane": {"netns": CP_NETNS, "ip": CP_IP},
                        "nodes": [{"name": x.name, "netns": x.netns, "ip": x.ip, "pod_cidr": x.pod_cidr}
                                  for x in plan.nodes],
                        "image_cache": str(plan.image_cache)})
        st.save()
        await pr.step("checking prerequisites", self.check_prerequisites)
        await asyncio.gather(pr.step("building lab images", self.build_images),
                             pr.step("creating network namespaces", functools.partial(nodes.create_network, plan, st)))
        await pr.step("adding pod routes", functools.partial(nodes.routes, plan))

        async def control_plane_steps() -> None:
            await pr.step(f"starting etcd on {CP_NAME}", functools.partial(control_plane.start_etcd, plan, st))
            await pr.step(f"starting apiserver on {CP_NAME}", self.start_apiserver)
            await pr.step("starting apiserver relay, writing admin.conf",
                          lambda: control_plane.start_apiserver_relay(plan, st))
            await pr.step("registering nodes with their pod CIDRs",
                          lambda: control_plane.register_nodes(plan, st))

        async def registry() -> None:
            await pr.step(f"starting registry on {CP_NAME}", self.start_registry)
            await pr.step("pushing images", self.push_images)

        await asyncio.gather(control_plane_steps(), registry(),
                             *(pr.step(f"starting containerd on {x.name}",
                                       functools.partial(nodes.start_containerd, plan, st, x))
                               for x in plan.nodes))
        steps = [pr.step(f"starting scheduler on {CP_NAME}",
                         functools.partial(control_plane.start_scheduler, plan, st)),
                 pr.step(f"starting controller-manager on {CP_NAME}",
                         functools.partial(control_plane.start_controller_manager, plan, st)),
                 pr.step(f"starting dns on {CP_NAME}",
                         lambda: cluster_dns.start_dns(plan, st))]
        steps += [pr.step(f"starting kubelet on {x.name}", functools.partial(nodes.start_kubelet, plan, st, x))
                  for x in plan.nodes]
        steps += [pr.step(f"starting proxy on {x.name}", functools.partial(nodes.start_proxy, plan, st, x))
                  for x in plan.nodes]
        steps.append(pr.step("starting Prometheus", functools.partial(maybe_prometheus, st)))
        await asyncio.gather(*steps)
        await pr.step("waiting for nodes to be Ready", functools.partial(nodes.wait_nodes_ready, plan, st))
        st.complete = True
        st.save()


async def up(plan: Plan, out: Callable[[str], None] = print) -> int:
    t0 = time.monotonic()
    existing = LabState.load(plan.dir)
    if existing is not None:
        if existing.complete:
            dead = [p for p in existing.processes.values() if not p.alive()]
            if not dead:
                out(f"lab in {plan.dir} is already up ({len(existing.processes)} processes running); nothing to do")
                control_plane.publish_kubeconfig(existing)  # the context again, should the user have removed it
                await print_summary(existing, out)
                return 0
            out(f"lab in {plan.dir} is up but {len(dead)} processes are down; restarting them")

            async def restart(rec: ProcessRecord) -> None:
                t1 = time.monotonic()
                await start_recorded(existing, rec)
                out(f"restarted {rec.name} ... ok ({time.monotonic() - t1:.1f} s)")

            # etcd members first and together (a cluster's members are healthy only with a quorum), then the rest.
            await asyncio.gather(*(restart(r) for r in dead if r.component == "etcd"))
            for rec in dead:
                if rec.component != "etcd":
                    await restart(rec)
            await print_summary(existing, out)
            return 0
        out(f"found an unfinished lab in {plan.dir}; tearing it down first")
        await down(plan.dir, out)
    lab = Lab(plan, out)
    try:
        await lab.up()
    except (LabError, OSError, RuntimeError, subprocess.CalledProcessError, TimeoutError) as e:
        out(f"lab up failed: {e}")
        out(f"what was made is recorded in {lab.st.path}; `lab down` removes it")
        return 1
    out(f"lab up in {time.monotonic() - t0:.1f} s ({plan.workers} nodes, profile {plan.profile.name})")
    await print_summary(lab.st, out)
    return 0


# ---- down --------------------------------------------------------------------------------------

async def down(lab_dir: Path, out: Callable[[str], None] = print) -> int:
    from node_agent.containerd import Containerd, mounts_under

    lab_dir = lab_dir.resolve()
    st = LabState.load(lab_dir)
    if st is None:
        out(f"no lab in {lab_dir} (no {lab_dir / 'state.json'}); nothing to do")
        return 0
    t0 = time.monotonic()
    where = control_plane.unpublish_kubeconfig(st)
    if where:
        out(f"removed context {control_plane.CONTEXT} from {where}")
    procs = list(st.processes.values())
    # 1. node agents first, so nothing recreates pods while we remove them
    first = [p for p in procs if p.component in ("kubelet", "proxy")]
    await stop_all(first, 10)
    out(f"stopped {len(first)} node agents")
    # 2. pods through the CRI while containerd still runs (clean CNI teardown, cgroups removed)
    async def remove_pods(node: str, info: dict[str, str]) -> None:
        ctd = Containerd(info["dir"], netns=info["netns"], pod_cidr=info["pod_cidr"])
        if Path(info["socket"]).exists():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ctd.remove_all_pods(), 30)
    await asyncio.gather(*(remove_pods(k, v) for k, v in st.containerd.items()))
    ctds = [p for p in procs if p.component == "containerd"]
    await stop_all(ctds, 10)
    leftovers: list[str] = []
    for info in st.containerd.values():
        ctd = Containerd(info["dir"], netns=info["netns"], pod_cidr=info["pod_cidr"])
        leftovers += await ctd.destroy(remove_dir=True)
    out(f"removed pods and containerd on {len(st.containerd)} nodes")
    # 3. everything else, in reverse start order (control plane, relays, registry, prometheus)
    rest = [p for p in reversed(procs) if p.component not in ("kubelet", "proxy", "containerd")]
    await stop_all(rest, 10)
    for pid in stray_pids(lab_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    out(f"stopped {len(rest)} control-plane and lab processes")
    # 4. mounts, namespaces, directories
    for root in [*st.mounts, str(lab_dir)]:
        for mp in mounts_under(root):
            await run_cmd(["umount", mp], check=False)
            if mp in mounts_under(root):
                await run_cmd(["umount", "-l", mp], check=False)
    for ns in reversed(st.namespaces):
        await asyncio.to_thread(netns.delete, ns)
    out(f"deleted namespaces {', '.join(reversed(st.namespaces))}")
    left = [m for root in [*st.mounts, str(lab_dir)] for m in mounts_under(root)]
    for d in sorted(set(st.dirs) | {str(lab_dir)}, key=len, reverse=True):
        if not left:
            shutil.rmtree(d, ignore_errors=True)
    if left or leftovers:
        out(f"warning: mounts left: {left or leftovers}; kept {lab_dir}")
        return 1
    out(f"lab down in {time.monotonic() - t0:.1f} s; removed {lab_dir}")
    return 0



# ---- stop/start one component -------------------------------------------------------------------


async def start_recorded(st: LabState, rec: ProcessRecord, *, timeout: float = 30.0) -> ProcessRecord:
    """(Re)start a recorded process with its recorded command line and wait until it is healthy."""
    if rec.component == "relay":
        spec = st.info.get("relays", {}).get(rec.name, {})
        new = start_relay(st, rec.name, port_key=spec.get("port_key", "relay_port"),
                          target=spec.get("target", f"127.0.0.1:{ports.APISERVER}"))
    else:
        new = spawn(st, rec.name, rec.component, rec.argv, netns_name=rec.netns, node=rec.node)
    check = health_check(st, new)
    if check is not None:
        await wait_for(check, f"{new.name}", timeout=timeout, rec=new)
    return new


def _select(st: LabState, component: str, node: str) -> list[ProcessRecord]:
    if component in st.processes and st.processes[component].component == "etcd":
        return [st.processes[component]]  # one member of a cluster: etcd-2
    if component not in COMPONENTS and component not in ("registry", "relay", "prometheus"):
        raise LabError(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
    recs = st.find(component, node)
    if not recs:
        raise LabError(f"no {component}{' on ' + node if node else ''} in this lab")
    return recs


async def stop_component(lab_dir: Path, component: str, node: str = "",
                         out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    for rec in _select(st, component, node):
        t0 = time.monotonic()
        was = await asyncio.to_thread(rec.stop, 10)
        out(f"{'stopped' if was else 'already stopped:'} {rec.name} ({time.monotonic() - t0:.1f} s)")
    return 0


async def start_component(lab_dir: Path, component: str, node: str = "",
                          out: Callable[[str], None] = print) -> int:
    st = LabState.load(lab_dir.resolve())
    if st is None:
        raise LabError(f"no lab in {lab_dir}")
    async def start(rec: ProcessRecord) -> None:
        if rec.alive():
            out(f"already running: {rec.name} (pid {rec.pid})")
            return
        t0 = time.monotonic()
        new = await start_recorded(st, rec)
        out(f"started {new.name} (pid {new.pid}) ... ok ({time.monotonic() - t0:.1f} s)")

    recs = _select(st, component, node)
    if component == "etcd":  # a cluster's members are healthy only once a quorum runs: start them together
        await asyncio.gather(*(start(rec) for rec in recs))
        return 0
    for rec in recs:
        await start(rec)
    return 0
