"""Offline lab images: busybox, nginx, python and pause, built on the machine from Debian packages.

Nothing can be pulled from the internet, so the lab builds its own OCI images with umoci (the root
filesystems come from lab.image_rootfs): one busybox layer that every image starts from, plus an nginx
layer and a python layer. CATALOG says, per image, the repository and the explicit list of tags it is
served under. Clients name them as on docker.io (`nginx:1.15.4` is `docker.io/library/nginx:1.15.4`)
or registry.k8s.io / k8s.gcr.io (`pause:3.9`); node containerds mirror those registries to the lab
registry (node_agent.containerd), so a tag missing from CATALOG is the registry's "not found".

The build is cached in one directory: an OCI layout holding every image, and two OCI archives whose
manifests carry the `io.containerd.image.name` annotation, so `ctr images import` names them:
  * lab-images.oci.tar: busybox and pause as `localhost:5000/busybox:stable` and `localhost:5000/pause:3.9`
    (small; what tests, benches and the kubelet fixtures import);
  * all-images.oci.tar: every image under every name in CATALOG (the Vagrant nodes import and serve it).
A stamp (build.json) records what the images were built from; the cache is rebuilt when it changes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lab import image_rootfs
from lab.image_rootfs import INDEX_PAGE
from pybernetes import ports

log = logging.getLogger(__name__)

REGISTRY = f"localhost:{ports.REGISTRY}"
BUSYBOX_IMAGE = f"{REGISTRY}/busybox:stable"
PAUSE_IMAGE = f"{REGISTRY}/pause:3.9"
__all__ = ["BUSYBOX_IMAGE", "CATALOG", "INDEX_PAGE", "PAUSE_IMAGE", "ImageSpec", "LabImages", "build_lab_images"]

DOCKER_HUB = ("docker.io",)
K8S_REGISTRIES = ("registry.k8s.io", "k8s.gcr.io")
# Registries node containerds send to the lab registry (node_agent.containerd keeps the same list).
MIRRORED = DOCKER_HUB + K8S_REGISTRIES
BUILD_VERSION = 2  # bump when what goes into an image changes
PACKAGES = ("busybox-static", "nginx", "python3", "python3.11-minimal", "libpython3.11-stdlib")


@dataclass(frozen=True)
class ImageSpec:
    """One image: its tag in the OCI layout, its repository in the registry, the tags served, its config."""

    name: str
    repo: str
    tags: tuple[str, ...]
    upstream: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...] = ("PATH=/usr/local/bin:/bin:/usr/bin:/sbin:/usr/sbin",)
    ports: tuple[str, ...] = ()
    stop_signal: str = ""
    fill: Callable[[Path], None] | None = None  # the layer on top of busybox (None: busybox only)
    local: tuple[str, ...] = ()  # also served as localhost:5000/<this> (the lab's own earlier names)

    def names(self) -> list[str]:
        """Every fully qualified name clients use for it, e.g. docker.io/library/nginx:1.15.4."""
        out = [f"{host}/{self.repo}:{tag}" for host in self.upstream for tag in self.tags]
        return out + [f"{REGISTRY}/{ref}" for ref in self.local]

    def registry_refs(self) -> list[str]:
        """Its `repository:tag`s inside the lab registry (what a mirror request for any name asks for)."""
        return [f"{self.repo}:{tag}" for tag in self.tags] + list(self.local)


# Tags: `latest` plus those tutorials, the Kubernetes docs and client test suites write. Explicit on
# purpose: any other tag fails to pull with the registry's not-found, as a missing tag does upstream.
CATALOG: tuple[ImageSpec, ...] = (
    ImageSpec("busybox", "library/busybox", upstream=DOCKER_HUB, cmd=("sh",), local=("busybox:stable",),
              tags=("latest", "stable", "1.28", "1.29", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36",
                    "1.36.1", "1.37", "glibc", "musl", "uclibc")),
    ImageSpec("nginx", "library/nginx", upstream=DOCKER_HUB, cmd=("nginx", "-g", "daemon off;"),
              ports=("80/tcp",), stop_signal="SIGQUIT", fill=image_rootfs.nginx,
              tags=("latest", "stable", "mainline", "alpine", "stable-alpine", "alpine-slim", "1.7.9", "1.14",
                    "1.14.2", "1.15", "1.15.4", "1.16", "1.17", "1.19", "1.20", "1.21", "1.22", "1.23", "1.24",
                    "1.25", "1.25.3", "1.25-alpine", "1.26", "1.27", "1.27-alpine", "1.28", "1.29")),
    ImageSpec("python", "library/python", upstream=DOCKER_HUB, cmd=("python3",), fill=image_rootfs.python,
              env=("PATH=/usr/local/bin:/bin:/usr/bin:/sbin:/usr/sbin", "LANG=C.UTF-8", "PYTHONUNBUFFERED=1"),
              tags=("latest", "3", "3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "slim", "3-slim", "3.11-slim",
                    "3.12-slim", "alpine", "3-alpine", "3.12-alpine", "bookworm", "slim-bookworm")),
    # The sandbox ("pause") container only has to hold the pod's namespaces open.
    ImageSpec("pause", "pause", upstream=K8S_REGISTRIES, cmd=("sleep", "infinity"), local=("pause:3.9",),
              tags=("latest", "3.1", "3.2", "3.5", "3.6", "3.7", "3.8", "3.9", "3.10")),
)
_BY_NAME = {s.name: s for s in CATALOG}
_SMALL = {"busybox": [BUSYBOX_IMAGE], "pause": [PAUSE_IMAGE]}  # lab-images.oci.tar: layout tag -> names

CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2000-01-01T00:00:00Z"


@dataclass(frozen=True)
class LabImages:
    """Where the built images are: an OCI layout directory and two archives of it (see the module doc), and the
    stamp of their build (what it depended on: a rebuild changes it)."""

    layout: Path
    archive: Path
    full_archive: Path
    stamp: Path

    def skopeo_ref(self, tag: str) -> str:
        """A skopeo source reference for one image of CATALOG (`busybox`, `nginx`, `python`, `pause`)."""
        return f"oci:{self.layout}:{tag}"


def _umoci(*args: str) -> None:
    subprocess.run(["umoci", *args], check=True, capture_output=True, text=True)


def _stamp() -> dict[str, object]:
    """What a build depends on: this module's version and the source packages' versions."""
    res = subprocess.run(["dpkg-query", "-W", "-f", "${Package}=${Version}\n", *PACKAGES],
                         capture_output=True, text=True)
    return {"version": BUILD_VERSION, "packages": sorted(res.stdout.split()),
            "images": {s.name: s.names() for s in CATALOG}}


def _configure(layout: Path, spec: ImageSpec) -> None:
    args = ["config", "--image", f"{layout}:{spec.name}", "--os", "linux", "--architecture", "amd64",
            "--created", CREATED, "--history.created", CREATED, "--config.workingdir", "/",
            "--clear", "config.entrypoint", "--clear", "config.env"]
    for env in spec.env:
        args += ["--config.env", env]
    for part in spec.cmd:
        args += ["--config.cmd", part]
    for port in spec.ports:
        args += ["--config.exposedports", port]
    if spec.stop_signal:
        args += ["--config.stopsignal", spec.stop_signal]
    _umoci(*args)


def _build_layout(layout: Path, work: Path, progress: Callable[[str], None]) -> None:
    _umoci("init", "--layout", str(layout))
    _umoci("new", "--image", f"{layout}:base")
    bundle = work / "bundle"
    _umoci("unpack", "--image", f"{layout}:base", str(bundle))
    image_rootfs.busybox(bundle / "rootfs")
    image_rootfs.fix_mtimes(bundle / "rootfs")
    _umoci("repack", "--history.created", CREATED, "--image", f"{layout}:base", str(bundle))
    for spec in CATALOG:
        t0 = time.monotonic()
        _umoci("tag", "--image", f"{layout}:base", spec.name)
        if spec.fill is not None:
            stage = work / spec.name
            stage.mkdir()
            spec.fill(stage)
            image_rootfs.fix_mtimes(stage)
            # One layer; directories merge with the base's (its /usr/bin -> /bin links stay: fill never makes usr/bin).
            _umoci("insert", "--history.created", CREATED, "--image", f"{layout}:{spec.name}", str(stage), "/")
        _configure(layout, spec)
        progress(f"image {spec.name} ready ({time.monotonic() - t0:.1f} s)")
    _umoci("rm", "--image", f"{layout}:base")
    _umoci("gc", "--layout", str(layout))


def _blobs_of(layout: Path, manifest_digest: str) -> set[str]:
    """The blob paths (relative to the layout) a manifest needs: itself, its config and its layers."""
    def path(digest: str) -> str:
        algo, hexd = digest.split(":", 1)
        return f"blobs/{algo}/{hexd}"
    manifest = json.loads((layout / path(manifest_digest)).read_text())
    return {path(manifest_digest), path(manifest["config"]["digest"]),
            *(path(layer["digest"]) for layer in manifest["layers"])}


def _write_archive(layout: Path, archive: Path, names: dict[str, list[str]]) -> None:
    """An OCI archive of the layout: one index entry per containerd name, only the blobs they need."""
    index = json.loads((layout / "index.json").read_text())
    by_tag = {d.get("annotations", {}).get(OCI_REF_NAME, ""): d for d in index.get("manifests", [])}
    entries: list[dict[str, object]] = []
    blobs: set[str] = set()
    for tag, fq_names in names.items():
        desc = by_tag[tag]
        blobs |= _blobs_of(layout, desc["digest"])
        for i, name in enumerate(fq_names):
            ann = {CONTAINERD_NAME: name}
            if i == 0:
                ann[OCI_REF_NAME] = tag  # skopeo's oci-archive:FILE:<tag> finds it by this
            entries.append({**desc, "annotations": ann})
    tmp = archive.with_suffix(".partial")
    index_path = archive.with_suffix(".index.json")
    index_path.write_text(json.dumps({**index, "manifests": entries}))
    with tarfile.open(tmp, "w") as tar:
        tar.add(layout / "oci-layout", arcname="oci-layout")
        tar.add(index_path, arcname="index.json")
        for blob in sorted(blobs):
            tar.add(layout / blob, arcname=blob)
    index_path.unlink()
    tmp.replace(archive)


def build_lab_images(cache_dir: str | os.PathLike[str],
                     progress: Callable[[str], None] | None = None) -> LabImages:
    """Build (or reuse) the lab images under `cache_dir`; `progress` gets a line per image built."""
    say = progress or (lambda line: log.info(line))
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    images = LabImages(layout=cache / "oci-layout", archive=cache / "lab-images.oci.tar",
                       full_archive=cache / "all-images.oci.tar", stamp=cache / "build.json")
    stamp_path = images.stamp
    stamp = _stamp()
    if (images.archive.exists() and images.full_archive.exists() and stamp_path.exists()
            and json.loads(stamp_path.read_text()) == stamp):
        return images
    work = cache / "build"
    for p in (images.layout, work):
        shutil.rmtree(p, ignore_errors=True)
    stamp_path.unlink(missing_ok=True)
    work.mkdir()
    t0 = time.monotonic()
    say(f"building images {', '.join(s.name for s in CATALOG)} in {cache}")
    try:
        _build_layout(images.layout, work, say)
        _write_archive(images.layout, images.archive, _SMALL)
        _write_archive(images.layout, images.full_archive, {s.name: s.names() for s in CATALOG})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stamp_path.write_text(json.dumps(stamp, indent=1))
    say(f"built images in {time.monotonic() - t0:.1f} s: {images.full_archive} "
        f"({images.full_archive.stat().st_size // 2**20} MiB)")
    return images


def spec(name: str) -> ImageSpec:
    return _BY_NAME[name]


def main() -> None:
    import sys

    out = build_lab_images(sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/pybernetes-images", print)
    print(out.archive)
    print(out.full_archive)


if __name__ == "__main__":
    main()
