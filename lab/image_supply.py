"""How lab nodes get images with no internet: `lab up`'s image steps.

The busybox and pause images are built once into the image cache (lab.images), served by a
docker-registry in pb-control-plane (lab.image_registry.Registry) and pushed there with skopeo; each
node gets a forwarder on its own 127.0.0.1 registry port to that registry (a mirror of it on the node's
loopback), since containerd pulls `localhost:<port>/...` inside the node's private namespace.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from lab import netns
from lab.health import wait_for
from lab.image_registry import REGISTRY_BIN, Registry
from lab.images import LabImages, build_lab_images
from lab.processes import run_cmd, spawn
from lab.state import LabState, ProcessRecord, proc_start_time
from lab.topology import CP_IP, CP_NETNS, NodeSpec, Plan
from pybernetes import ports


async def build_images(image_cache: Path) -> tuple[LabImages, str]:
    """The lab images (built, or reused from `image_cache`) and a note saying which."""
    cached = (image_cache / "lab-images.oci.tar").exists()
    images = await asyncio.to_thread(build_lab_images, image_cache)
    return images, "cached" if cached else f"built in {image_cache}"


async def start_registry(plan: Plan, st: LabState) -> Registry:
    """docker-registry on the control plane's lab address, recorded as the `registry` process."""
    storage = plan.path("control-plane", "registry")
    reg = Registry(storage, address=f"{CP_IP}:{ports.REGISTRY}", netns=CP_NETNS)
    await asyncio.to_thread(reg.start)
    proc = reg._proc
    assert proc is not None
    rec = ProcessRecord(name="registry", component="registry", argv=[REGISTRY_BIN, "serve",
                        str(reg.config_path)], log=str(storage / "registry.log"), netns=CP_NETNS,
                        pid=proc.pid, start_time=proc_start_time(proc.pid) or 0, started_at=time.time())
    st.add_process(rec)
    return reg


async def push_images(reg: Registry, images: LabImages) -> str:
    refs = await asyncio.gather(asyncio.to_thread(reg.push, images.skopeo_ref("busybox"), "busybox:stable"),
                                asyncio.to_thread(reg.push, images.skopeo_ref("pause"), "pause:3.9"))
    return ", ".join(refs)


async def start_forwarder(st: LabState, n: NodeSpec) -> str:
    """The registry forwarder in node `n`: its 127.0.0.1 registry port -> the control plane's registry."""
    argv = [sys.executable, "-m", "lab.image_registry", "forward", f"127.0.0.1:{ports.REGISTRY}",
            f"{CP_IP}:{ports.REGISTRY}"]
    rec = spawn(st, f"registry-forwarder/{n.name}", "registry-forwarder", argv, netns_name=n.netns, node=n.name)
    probe = netns.nsenter(n.netns, [sys.executable, "-c",
                                    f"import socket; socket.create_connection(('127.0.0.1', {ports.REGISTRY}), 1)"])

    async def listening() -> bool:
        code, _ = await run_cmd(probe, check=False)
        return code == 0
    await wait_for(listening, f"registry forwarder on {n.name}", rec=rec, timeout=15, interval=0.2)
    return ""
