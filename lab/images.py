"""Offline lab images: a busybox image and a pause image built from the host's busybox-static.

Nothing can be pulled from the internet, so the lab builds its own OCI images with umoci: one layer
holding /bin/busybox plus a symlink per applet, a few /etc files and /www/index.html. The result is
an OCI layout (two tags) and an OCI archive tarball whose manifests carry the
`io.containerd.image.name` annotation, so `ctr images import` names them with fully qualified
references. Builds are cached in a directory and redone only when the archive is missing.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pybernetes import ports

log = logging.getLogger(__name__)

BUSYBOX_BIN = "/bin/busybox"
REGISTRY = f"localhost:{ports.REGISTRY}"
BUSYBOX_IMAGE = f"{REGISTRY}/busybox:stable"
PAUSE_IMAGE = f"{REGISTRY}/pause:3.9"
INDEX_PAGE = "hello from pybernetes busybox\n"

# tag inside the OCI layout -> (fully qualified name, Cmd)
_IMAGES: dict[str, tuple[str, list[str]]] = {
    "busybox": (BUSYBOX_IMAGE, ["sh"]),
    # The sandbox ("pause") container only has to hold the pod's namespaces open.
    "pause": (PAUSE_IMAGE, ["sleep", "infinity"]),
}

CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class LabImages:
    """Where the built images are: an OCI layout directory and the same content as one tarball."""

    layout: Path
    archive: Path

    def skopeo_ref(self, tag: str) -> str:
        """A skopeo source reference for one tag (`busybox` or `pause`)."""
        return f"oci:{self.layout}:{tag}"


def _umoci(*args: str) -> None:
    subprocess.run(["umoci", *args], check=True, capture_output=True, text=True)


def _fill_rootfs(rootfs: Path) -> None:
    bindir = rootfs / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX_BIN, bindir / "busybox")
    applets = subprocess.run([BUSYBOX_BIN, "--list"], check=True, capture_output=True, text=True).stdout
    for name in applets.split():
        if name != "busybox" and not (bindir / name).exists():
            (bindir / name).symlink_to("busybox")
    # /usr/bin and /sbin as links keep absolute paths like /usr/bin/env or /sbin/ip working.
    (rootfs / "usr").mkdir(exist_ok=True)
    for link in ("usr/bin", "sbin", "usr/sbin"):
        p = rootfs / link
        if not p.exists():
            p.symlink_to("/bin")
    for d in ("etc", "tmp", "proc", "sys", "dev", "root", "www", "var/run"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    (rootfs / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
    )
    (rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (rootfs / "www/index.html").write_text(INDEX_PAGE)


def _annotate_index(layout: Path) -> None:
    """Give every manifest in index.json its fully qualified containerd name."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    for desc in index.get("manifests", []):
        ann = desc.setdefault("annotations", {})
        tag = ann.get(OCI_REF_NAME, "")
        if tag in _IMAGES:
            ann[CONTAINERD_NAME] = _IMAGES[tag][0]
    index_path.write_text(json.dumps(index))


def _build_layout(layout: Path, work: Path) -> None:
    _umoci("init", "--layout", str(layout))
    _umoci("new", "--image", f"{layout}:base")
    bundle = work / "bundle"
    _umoci("unpack", "--image", f"{layout}:base", str(bundle))
    _fill_rootfs(bundle / "rootfs")
    _umoci("repack", "--image", f"{layout}:base", str(bundle))
    for tag, (_, cmd) in _IMAGES.items():
        args = ["config", "--image", f"{layout}:base", "--tag", tag, "--os", "linux"]
        args += ["--architecture", "amd64", "--config.workingdir", "/", "--clear", "config.entrypoint"]
        args += ["--config.env", "PATH=/bin:/usr/bin:/sbin:/usr/sbin"]
        for part in cmd:
            args += ["--config.cmd", part]
        _umoci(*args)
    _umoci("rm", "--image", f"{layout}:base")
    _umoci("gc", "--layout", str(layout))
    _annotate_index(layout)


def _tar_layout(layout: Path, archive: Path) -> None:
    tmp = archive.with_suffix(".partial")
    with tarfile.open(tmp, "w") as tar:
        for entry in sorted(layout.iterdir()):
            tar.add(entry, arcname=entry.name)
    tmp.replace(archive)


def build_lab_images(cache_dir: str | os.PathLike[str]) -> LabImages:
    """Build (or reuse) the lab images under `cache_dir`; returns the layout and archive paths."""
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    layout = cache / "oci-layout"
    archive = cache / "lab-images.oci.tar"
    if archive.exists() and (layout / "index.json").exists():
        return LabImages(layout=layout, archive=archive)
    work = cache / "build"
    for p in (layout, work):
        shutil.rmtree(p, ignore_errors=True)
    work.mkdir()
    log.info("building lab images", extra={"cache": str(cache)})
    try:
        _build_layout(layout, work)
        _tar_layout(layout, archive)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log.info("built lab images", extra={"archive": str(archive)})
    return LabImages(layout=layout, archive=archive)


def main() -> None:
    import sys

    logging.basicConfig(level=logging.INFO)
    out = build_lab_images(sys.argv[1] if len(sys.argv) > 1 else "/var/tmp/pybernetes-images")
    print(out.archive)


if __name__ == "__main__":
    main()
