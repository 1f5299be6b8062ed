"""Lab image registry: a docker-registry process, image pushes with skopeo, and a loopback forwarder.

Nodes pull `localhost:<ports.REGISTRY>/...` over plain http, but each node's containerd lives in its own
network namespace whose loopback is private. The lab runs one registry on a lab address (in its control plane's
netns) and has each containerd resolve that name to it (node_agent.containerd.render_hosts' endpoint). Tests
whose nodes keep the plain name put a TCP forwarder on the node's 127.0.0.1 at the same port instead
(`start_forwarder`: the relay program, lab.relay).

Images are pushed once per repository with skopeo; every further tag of the same image is a manifest copy
over the registry API (`tag`, milliseconds), so serving the catalog's many tags stays quick.
`python -m lab.image_registry push-archive FILE HOST:PORT` serves an OCI archive of lab.images (each
`io.containerd.image.name`, without its registry host) in a registry: the Vagrant nodes run it (install.sh).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from lab.netns import nsenter
from pybernetes import ports

log = logging.getLogger(__name__)

REGISTRY_BIN = "/usr/bin/docker-registry"

_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {address}
"""


def _wrap(netns: str | None, argv: list[str]) -> list[str]:
    return nsenter(netns, argv) if netns else argv


class Registry:
    """A docker-registry bound to `address` (host:port), optionally inside network namespace `netns`."""

    def __init__(self, storage_dir: str | os.PathLike[str], *, address: str = f"127.0.0.1:{ports.REGISTRY}",
                 netns: str | None = None) -> None:
        self.storage = Path(storage_dir).resolve()
        self.address = address
        self.netns = netns
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.storage / "config.yml"

    def start(self, *, timeout: float = 15.0) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        (self.storage / "data").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(_CONFIG.format(storage=self.storage / "data", address=self.address))
        with open(self.storage / "registry.log", "ab") as logf:
            self._proc = subprocess.Popen(
                _wrap(self.netns, [REGISTRY_BIN, "serve", str(self.config_path)]),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited; see {self.storage / 'registry.log'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"registry at {self.address} not ready after {timeout}s")
            time.sleep(0.1)
        log.info("registry ready", extra={"address": self.address, "netns": self.netns})

    def ready(self) -> bool:
        cmd = _wrap(self.netns, ["curl", "-fsS", "-o", "/dev/null", "--max-time", "1",
                                 f"http://{self.address}/v2/"])
        return subprocess.run(cmd, capture_output=True).returncode == 0

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def push(self, source: str, name: str) -> str:
        """Copy `source` (a skopeo ref, e.g. `oci:/path/layout:busybox`) to `name` (e.g. busybox:stable).

        Returns the reference as nodes see it through their forwarder: `localhost:<ports.REGISTRY>/<name>`.
        """
        dest = f"docker://{self.address}/{name}"
        cmd = _wrap(self.netns, ["skopeo", "copy", "--dest-tls-verify=false", source, dest])
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"skopeo copy {source} {dest} failed: {res.stderr.strip()}")
        log.info("pushed image", extra={"source": source, "dest": dest})
        return f"localhost:{ports.REGISTRY}/{name}"

    def tag(self, repo: str, source_tag: str, tags: Iterable[str]) -> None:
        """Give `repo:source_tag` (already pushed) the further `tags`, in one process inside the netns."""
        tags = list(tags)
        if not tags:
            return
        cmd = _wrap(self.netns, [sys.executable, "-m", "lab.image_registry", "tag", self.address, repo,
                                 source_tag, *tags])
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"tagging {repo}:{source_tag} in {self.address} failed: {res.stderr.strip()}")


_MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json,"
                   "application/vnd.docker.distribution.manifest.v2+json")


def tag(address: str, repo: str, source_tag: str, tags: Iterable[str]) -> None:
    """Copy the manifest of `repo:source_tag` to each of `tags` in the registry at `address`."""
    req = urllib.request.Request(f"http://{address}/v2/{repo}/manifests/{source_tag}",
                                 headers={"Accept": _MANIFEST_TYPES})
    with urllib.request.urlopen(req, timeout=30) as resp:
        body, media_type = resp.read(), resp.headers["Content-Type"]
    for t in tags:
        put = urllib.request.Request(f"http://{address}/v2/{repo}/manifests/{t}", data=body, method="PUT",
                                     headers={"Content-Type": media_type})
        with urllib.request.urlopen(put, timeout=30):
            pass


def registry_path(name: str) -> str:
    """`repository:tag` inside a registry for a fully qualified name (docker.io/library/nginx:1 -> library/nginx:1)."""
    return name.split("/", 1)[1]


def push_archive(archive: str, address: str) -> list[str]:
    """Serve every named image of an OCI archive (lab.images) in the registry at `address`; returns the refs.

    Per image and repository: one skopeo copy (from the index entry that has the OCI ref name), then tags."""
    with tarfile.open(archive) as tar:
        f = tar.extractfile("index.json")
        assert f is not None
        index = json.load(f)
    groups: dict[tuple[str, str], list[str]] = {}  # (manifest digest, repo) -> tags
    ref_names: dict[str, str] = {}  # manifest digest -> its OCI ref name in the archive
    for desc in index["manifests"]:
        ann = desc.get("annotations", {})
        if "org.opencontainers.image.ref.name" in ann:
            ref_names[desc["digest"]] = ann["org.opencontainers.image.ref.name"]
        repo, _, t = registry_path(ann["io.containerd.image.name"]).rpartition(":")
        tags = groups.setdefault((desc["digest"], repo), [])
        if t not in tags:  # pause:3.9 is named by both registry.k8s.io and k8s.gcr.io
            tags.append(t)
    done: list[str] = []
    for (digest, repo), tags in groups.items():
        src = f"oci-archive:{archive}:{ref_names[digest]}"
        dest = f"docker://{address}/{repo}:{tags[0]}"
        res = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", src, dest], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"skopeo copy {src} {dest} failed: {res.stderr.strip()}")
        tag(address, repo, tags[0], tags[1:])
        done += [f"{repo}:{t}" for t in tags]
    return done


# ---- loopback forwarder ----

def start_forwarder(netns: str, target: str, *, listen: str = f"127.0.0.1:{ports.REGISTRY}",
                    log_path: str | None = None) -> subprocess.Popen[bytes]:
    """Run a TCP forwarder (lab.relay) inside `netns` from `listen` to `target`; returns the process (stop it)."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            nsenter(netns, [sys.executable, "-m", "lab.relay", "--listen", listen, target]),
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
        )
    finally:
        if not isinstance(out, int):
            out.close()
    host, port = listen.rsplit(":", 1)
    deadline = time.monotonic() + 10
    probe = ["python3", "-c", f"import socket; socket.create_connection(('{host}', {port}), 1)"]
    while subprocess.run(nsenter(netns, probe), capture_output=True).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"forwarder {listen}->{target} in {netns} did not start")
        time.sleep(0.1)
    return proc


def main() -> None:
    args = sys.argv[1:]
    if len(args) >= 4 and args[0] == "tag":
        tag(args[1], args[2], args[3], args[4:])
    elif len(args) == 3 and args[0] == "push-archive":
        refs = push_archive(args[1], args[2])
        print(f"{len(refs)} images served by {args[2]}: {' '.join(refs)}")
    else:
        sys.exit("usage: python -m lab.image_registry tag HOST:PORT REPO SOURCE_TAG TAG...\n"
                 "       python -m lab.image_registry push-archive OCI_ARCHIVE HOST:PORT")


if __name__ == "__main__":
    main()
