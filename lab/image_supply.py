"""How lab nodes get images with no internet: `lab up`'s image steps.

The busybox, nginx, python and pause images are built once into the image cache (lab.images), served by
a docker-registry in pb-control-plane (lab.image_registry.Registry; its storage in the image cache too, so they
are pushed once per build, not per `lab up`) under every name of lab.images.CATALOG
(`library/nginx:1.15.4`, `pause:3.9`, ..., and the lab's own `busybox:stable`). Each node's containerd
resolves `localhost:<port>/...` and the mirrored docker.io, registry.k8s.io and k8s.gcr.io to that
registry's address (topology.REGISTRY_ADDRESS; node_agent.containerd's hosts.toml), so unmodified manifests
(`image: nginx:1.15.4`) run offline and a node runs nothing of its own for images.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from lab.image_registry import REGISTRY_BIN, Registry
from lab.images import CATALOG, ImageSpec, LabImages, build_lab_images
from lab.state import LabState, ProcessRecord, proc_start_time
from lab.topology import CP_NETNS, REGISTRY_ADDRESS, Plan


async def build_images(image_cache: Path, progress: Callable[[str], None] | None = None) -> tuple[LabImages, str]:
    """The lab images (built, or reused from `image_cache`) and a note saying which; `progress` gets a
    line per image while a build runs (a first build takes several seconds)."""
    built: list[str] = []

    def say(line: str) -> None:
        built.append(line)
        if progress is not None:
            progress(f"  {line}")
    images = await asyncio.to_thread(build_lab_images, image_cache, say)
    return images, f"built in {image_cache}" if built else "cached"


def _pushed(storage: Path) -> Path:
    """The copy of the images' build stamp a registry's storage holds once every name is pushed."""
    return storage / "pushed.json"


def _holds(storage: Path, images: LabImages) -> bool:
    marker = _pushed(storage)
    return marker.is_file() and images.stamp.is_file() and marker.read_bytes() == images.stamp.read_bytes()


async def start_registry(plan: Plan, st: LabState, images: LabImages) -> Registry:
    """docker-registry on the control plane's lab address, recorded as the `registry` process.

    Its storage lives in the image cache, beside the images it serves, and outlives the lab as they do: a lab
    brought up again finds every name already pushed (`push_images` then pushes nothing: about a CPU-second of
    skopeo, manifest copies and the registry's own work saved on two cores). Storage holding an older build is
    emptied first."""
    storage = plan.image_cache / "registry"
    if not _holds(storage, images):
        shutil.rmtree(storage, ignore_errors=True)
    reg = Registry(storage, address=REGISTRY_ADDRESS, netns=CP_NETNS)
    await asyncio.to_thread(reg.start)
    proc = reg._proc
    assert proc is not None
    rec = ProcessRecord(name="registry", component="registry", argv=[REGISTRY_BIN, "serve",
                        str(reg.config_path)], log=str(storage / "registry.log"), netns=CP_NETNS,
                        pid=proc.pid, start_time=proc_start_time(proc.pid) or 0, started_at=time.time())
    st.add_process(rec)
    return reg


def _push(reg: Registry, images: LabImages, spec: ImageSpec) -> int:
    """One image under all its names: a skopeo copy per repository, the other tags as manifest copies."""
    by_repo: dict[str, list[str]] = {}
    for ref in spec.registry_refs():
        repo, _, tag = ref.rpartition(":")
        by_repo.setdefault(repo, []).append(tag)
    for repo, tags in by_repo.items():
        reg.push(images.skopeo_ref(spec.name), f"{repo}:{tags[0]}")
        reg.tag(repo, tags[0], tags[1:])
    return len(spec.registry_refs())


async def push_images(reg: Registry, images: LabImages) -> str:
    """Every name of CATALOG into the registry, unless its storage holds this build's already."""
    if _holds(reg.storage, images):
        return f"already in {reg.storage}: {', '.join(s.name for s in CATALOG)} ({images.stamp.name} unchanged)"
    counts = await asyncio.gather(*(asyncio.to_thread(_push, reg, images, s) for s in CATALOG))
    _pushed(reg.storage).write_bytes(images.stamp.read_bytes())  # only after every push succeeded
    return ", ".join(f"{s.name} ({n} tags)" for s, n in zip(CATALOG, counts, strict=True))
