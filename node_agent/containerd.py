"""Per-node containerd: config and CNI rendering, process lifecycle inside the node's netns, cleanup.

Each node gets one directory holding everything containerd touches (root, state, CNI conf, host-local
IPAM data, log) and a short socket directory of its own under /run/pybernetes, so several nodes share
one machine and teardown is "stop, kill leftover shims, unmount everything under the dir, delete both".

Images reach a node in one of two ways:
  * direct import (`Containerd.import_image`): `ctr images import` of an OCI archive whose manifests
    carry `io.containerd.image.name`. Used by the tests and bench/kubelet.py; no registry needed.
  * registry pulls: CRI PullImage of `localhost:<ports.REGISTRY>/...` (DEFAULT_REGISTRY). Where that
    registry is served is its hosts.toml's `server` (`registry_endpoint`): the lab points it at its one
    registry, on the control plane's address, so a node needs nothing of its own; without an
    endpoint it is the node netns's private loopback, where tests run a forwarder (lab.image_registry).
    The same registry is the mirror of docker.io, registry.k8s.io and k8s.gcr.io (MIRRORED_REGISTRIES):
    containerd 1.6's `config_path` with one hosts.toml per registry (render_hosts), so `nginx:1.15.4`
    (docker.io/library/nginx:1.15.4) is pulled as `library/nginx:1.15.4` from the lab registry, with no
    fallback to the internet: a tag it lacks is the registry's not-found.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import string
import time
from dataclasses import dataclass
from pathlib import Path

from node_agent.cri.client import CRIClient
from node_agent.cri.errors import CRIError, CRIUnavailable
from pybernetes import ports

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).resolve().parents[1] / "deploy" / "containerd" / "config.toml.tmpl"
CNI_BIN_DIR = "/usr/lib/cni"
NETNS_DIR = "/run/netns"
DEFAULT_REGISTRY = f"localhost:{ports.REGISTRY}"
# The local name, not registry.k8s.io/pause:3.9 through the mirror: nodes that import images (tests,
# Vagrant) have it without any registry, and a sandbox never waits on a pull.
DEFAULT_SANDBOX_IMAGE = f"{DEFAULT_REGISTRY}/pause:3.9"
MIRRORED_REGISTRIES = ("docker.io", "registry.k8s.io", "k8s.gcr.io")
# Sockets live apart from the node dir: a unix socket path is limited to 108 bytes (containerd refuses
# more than 104 for its `.ttrpc` sibling), and a node dir under pytest's or a user's deep --dir passes
# that. As /run/containerd is for the system's containerd, each node's is /run/pybernetes/containerd/<id>.
SOCKET_ROOT = Path("/run/pybernetes/containerd")
CNI_NETWORK = "pbnet"
BRIDGE = "cni0"


@dataclass(frozen=True)
class NodePaths:
    """Where one node's containerd keeps its files."""

    base: Path

    @property
    def root(self) -> Path:
        return self.base / "root"

    @property
    def state(self) -> Path:
        return self.base / "state"

    @property
    def run_dir(self) -> Path:
        """A short directory of this node's own (named by a hash of `base`) for its sockets."""
        return SOCKET_ROOT / hashlib.sha256(str(self.base).encode()).hexdigest()[:16]

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def config(self) -> Path:
        return self.base / "config.toml"

    @property
    def cni_conf_dir(self) -> Path:
        return self.base / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.base / "cni" / "ipam"

    @property
    def certs_dir(self) -> Path:
        """containerd's registry `config_path`: one <registry>/hosts.toml per configured registry."""
        return self.base / "certs.d"

    @property
    def log_file(self) -> Path:
        return self.base / "containerd.log"

    @property
    def pod_logs(self) -> Path:
        return self.base / "pods"


def render_config(
    paths: NodePaths,
    *,
    sandbox_image: str = DEFAULT_SANDBOX_IMAGE,
    log_level: str = "info",
) -> str:
    """The containerd config.toml text for a node (its registries are write_hosts' files)."""
    return string.Template(TEMPLATE.read_text()).substitute(
        root=paths.root,
        state=paths.state,
        socket=paths.socket,
        log_level=log_level,
        sandbox_image=sandbox_image,
        cni_bin_dir=CNI_BIN_DIR,
        cni_conf_dir=paths.cni_conf_dir,
        certs_dir=paths.certs_dir,
    )


def render_hosts(registry: str = DEFAULT_REGISTRY,
                 mirrored: tuple[str, ...] = MIRRORED_REGISTRIES, *, endpoint: str | None = None) -> dict[str, str]:
    """hosts.toml text per registry directory name: `registry` itself (plain http) and each mirrored one,
    all served from `endpoint` (host:port; default `registry` itself).

    A mirrored registry's `server` is the lab registry, not a `[host]` in front of the real one, so that
    containerd never falls back to the internet: a missing name fails with the lab registry's not-found.
    """
    url = f"http://{endpoint or registry}"
    # containerd 1.6 refuses a hosts.toml without a [host] table ("invalid `host` tree"), so the
    # registry is named twice: as the host tried first and as the server.
    body = f'server = "{url}"\n\n[host."{url}"]\n  capabilities = ["pull", "resolve"]\n'
    files = {registry: f"# The lab registry (plain http).\n{body}"}
    for name in mirrored:
        files[name] = (f"# {name} is served by the lab registry; names are kept (docker.io's `nginx` is\n"
                       f"# library/nginx), nothing goes to {name} itself.\n{body}")
    return files


def write_hosts(certs_dir: Path, registry: str = DEFAULT_REGISTRY,
                mirrored: tuple[str, ...] = MIRRORED_REGISTRIES, *, endpoint: str | None = None) -> None:
    """Write render_hosts' files as `certs_dir/<registry>/hosts.toml`, replacing what was there."""
    shutil.rmtree(certs_dir, ignore_errors=True)
    for name, text in render_hosts(registry, mirrored, endpoint=endpoint).items():
        (certs_dir / name).mkdir(parents=True, exist_ok=True)
        (certs_dir / name / "hosts.toml").write_text(text)


def render_cni_conflist(pod_cidr: str, data_dir: Path) -> str:
    """CNI conflist: bridge cni0 as the pods' gateway, host-local IPAM over the node's podCIDR."""
    conf = {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # No NAT: pod IPs are routed between nodes as they are.
                "ipMasq": False,
                # Lets a pod reach itself through a service VIP that DNATs back to it.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(data_dir),
                },
            }
        ],
    }
    return json.dumps(conf, indent=2)


def _mounts_under(base: Path) -> list[str]:
    """Mount points at or below `base`, deepest first (from this process's mountinfo)."""
    prefix = str(base.resolve())
    found: list[str] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # Field 5 is the mount point; spaces in it are octal-escaped.
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append(mp)
    return sorted(set(found), key=lambda m: m.count("/"), reverse=True)


def mounts_under(base: str | os.PathLike[str]) -> list[str]:
    return _mounts_under(Path(base))


def _pids_with_arg(arg: str) -> list[int]:
    """Processes whose argv contains exactly `arg` (e.g. our containerd socket path)."""
    pids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if arg.encode() in argv:
            pids.append(int(entry))
    return pids


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # ppid is the 2nd field after the parenthesised comm (which may hold spaces).
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.append(int(entry))
    return kids


def _kill_tree(pid: int) -> None:
    for kid in _children(pid):
        _kill_tree(kid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class Containerd:
    """One node's containerd, started inside network namespace `netns`."""

    def __init__(
        self,
        base_dir: str | os.PathLike[str],
        *,
        netns: str,
        pod_cidr: str,
        sandbox_image: str = DEFAULT_SANDBOX_IMAGE,
        registry: str = DEFAULT_REGISTRY,
        registry_endpoint: str | None = None,
        log_level: str = "info",
    ) -> None:
        self.paths = NodePaths(Path(base_dir).resolve())
        self.netns = netns
        self.pod_cidr = pod_cidr
        self.sandbox_image = sandbox_image
        self.registry = registry
        self.registry_endpoint = registry_endpoint  # where `registry` is served (render_hosts)
        self.log_level = log_level
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def socket(self) -> str:
        return str(self.paths.socket)

    def client(self) -> CRIClient:
        return CRIClient(self.socket)

    def write_config(self) -> None:
        p = self.paths
        for d in (p.root, p.state, p.cni_conf_dir, p.cni_data_dir, p.pod_logs, p.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        cfg = render_config(
            p, sandbox_image=self.sandbox_image, log_level=self.log_level
        )
        p.config.write_text(cfg)
        write_hosts(p.certs_dir, self.registry, endpoint=self.registry_endpoint)
        conflist = render_cni_conflist(self.pod_cidr, p.cni_data_dir)
        (p.cni_conf_dir / "10-pbnet.conflist").write_text(conflist)

    async def start(self, *, ready_within: float = 30.0) -> None:
        """Launch containerd in the node netns and wait until its CRI answers Version."""
        if self._proc is not None and self._proc.returncode is None:
            return
        self.write_config()
        self.paths.socket.unlink(missing_ok=True)
        # A raw fd handed to the child; closed in the parent right after the spawn.
        logfd = os.open(self.paths.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            # nsenter --net only: `ip netns exec` would remount /sys and hide the cgroup mount from runc.
            self._proc = await asyncio.create_subprocess_exec(
                "nsenter", f"--net={NETNS_DIR}/{self.netns}",
                "containerd", "--config", str(self.paths.config),
                stdin=asyncio.subprocess.DEVNULL, stdout=logfd, stderr=logfd,
                start_new_session=True,
            )
        finally:
            os.close(logfd)
        log.info("containerd starting",
                 extra={"netns": self.netns, "pid": self._proc.pid, "socket": self.socket})
        deadline = time.monotonic() + ready_within
        logfile = self.paths.log_file
        async with self.client() as cri:
            while True:
                if self._proc.returncode is not None:
                    raise CRIUnavailable(f"containerd exited with {self._proc.returncode}; see {logfile}")
                if self.paths.socket.exists():
                    try:
                        v = await cri.version(deadline=2.0)
                        log.info("containerd ready",
                                 extra={"netns": self.netns, "version": v.runtime_version})
                        return
                    except CRIError:
                        pass
                if time.monotonic() > deadline:
                    raise CRIUnavailable(f"containerd did not answer within {ready_within}s; see {logfile}")
                await asyncio.sleep(0.1)

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop containerd (SIGTERM, then SIGKILL). Shims and containers are left running."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("containerd stopped", extra={"netns": self.netns})

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def import_image(self, oci_tar: str | os.PathLike[str]) -> None:
        """Import an OCI archive into the CRI's k8s.io namespace (names from io.containerd.image.name)."""
        proc = await asyncio.create_subprocess_exec(
            "ctr", "--address", self.socket, "-n", "k8s.io", "images", "import", str(oci_tar),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise CRIError(f"ctr images import {oci_tar} failed: {err.decode().strip()}", method="import")
        log.info("imported images", extra={"archive": str(oci_tar), "output": out.decode().strip()})

    async def remove_all_pods(self) -> None:
        """Stop and remove every sandbox (and so every container) through the CRI."""
        async with self.client() as cri:
            for sb in await cri.list_pod_sandbox():
                with contextlib.suppress(CRIError):
                    await cri.stop_pod_sandbox(sb.id)
                with contextlib.suppress(CRIError):
                    await cri.remove_pod_sandbox(sb.id)

    async def destroy(self, *, remove_dir: bool = True) -> list[str]:
        """Tear the node down: pods, containerd, leftover shims, mounts, the directory.

        Returns mount points that could not be removed (empty on success).
        """
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(CRIError):
                await asyncio.wait_for(self.remove_all_pods(), 60)
        await self.stop()
        # Shims outlive containerd; they carry our socket path in argv, which identifies them exactly.
        for pid in _pids_with_arg(self.socket):
            _kill_tree(pid)
        leftover = await self.unmount_all()
        shutil.rmtree(self.paths.run_dir, ignore_errors=True)
        if remove_dir and not leftover:
            shutil.rmtree(self.paths.base, ignore_errors=True)
        return leftover

    async def unmount_all(self) -> list[str]:
        """Unmount everything under the node dir (shm, rootfs overlays, pod netns); lazily if busy."""
        for mp in _mounts_under(self.paths.base):
            proc = await asyncio.create_subprocess_exec(
                "umount", mp, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
            )
            if await proc.wait() != 0:
                lazy = await asyncio.create_subprocess_exec(
                    "umount", "-l", mp, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
                )
                await lazy.wait()
        left = _mounts_under(self.paths.base)
        if left:
            log.warning("mounts left under node dir", extra={"mounts": left})
        return left
