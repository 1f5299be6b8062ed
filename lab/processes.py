"""Process supervision for the lab: start a long-running process in its own session and record it in
lab.state, run a short command, stop recorded processes, find stray ones, and the host-side relays.

Every long-running lab process (components, containerd, relays, Prometheus) is started by
`spawn`, which writes its ProcessRecord (pid plus kernel start time, log path, full argv) before
returning, so `lab down` and `lab start` find it again. Health checks live in lab.health; the command
lines in lab.commands. The relays' program is lab.relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from lab import netns
from lab.errors import LabError
from lab.state import LabState, ProcessRecord, proc_ppid, proc_start_time
from lab.topology import CP_NETNS
from pybernetes import ports


def _log_name(name: str) -> str:
    return name.replace("/", "-") + ".log"


def spawn(st: LabState, name: str, component: str, argv: Sequence[str], *, netns_name: str = "",
          node: str = "", pass_fds: Sequence[int] = ()) -> ProcessRecord:
    """Start a long-running lab process in its own session (it outlives `lab up`) and record it."""
    logs = Path(st.dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / _log_name(name)
    full = netns.nsenter(netns_name, argv) if netns_name else list(argv)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PBCONFIG", None)  # components are given their own kubeconfig; the user's is not theirs
    env.pop("KUBECONFIG", None)
    with open(log_path, "ab") as logf:
        logf.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(full)}\n".encode())
        logf.flush()
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=st.dir, env=env, pass_fds=tuple(pass_fds))
    rec = ProcessRecord(name=name, component=component, argv=list(argv), log=str(log_path), netns=netns_name,
                        node=node, pid=proc.pid, started_at=time.time())
    rec.start_time = proc_start_time(proc.pid) or 0
    _CHILDREN.append(proc)
    st.add_process(rec)
    return rec


# Our Popen objects: kept referenced so that collecting one never warns that its process still runs.
_CHILDREN: list[subprocess.Popen[bytes]] = []


def log_tail(path: str, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


async def run_cmd(argv: Sequence[str], *, check: bool = True, timeout: float = 60.0) -> tuple[int, str]:
    """Run a short command to completion: (exit code, output); LabError on failure when `check`."""
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise LabError(f"{' '.join(argv)} timed out after {timeout:.0f} s") from None
    text = out.decode(errors="replace").strip()
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({proc.returncode}): {text}")
    return proc.returncode or 0, text


async def stop_all(recs: Sequence[ProcessRecord], grace: float = 10.0) -> None:
    await asyncio.gather(*(asyncio.to_thread(r.stop, grace) for r in recs))


_SWEEP_PROGRAMS = ("containerd", "containerd-shim", "containerd-shim-runc-v2", "etcd", "docker-registry", "python",
                   "python3", "python3.11", "nsenter", "pb-apiserver", "pb-scheduler", "pb-controller-manager",
                   "pb-kubelet", "pb-proxy", "prometheus")


def _ancestry(pid: int) -> set[int]:
    """`pid` and every process above it, up to init."""
    chain = {pid}
    while pid > 1:
        parent = proc_ppid(pid)
        if parent is None:
            break
        pid = parent
        chain.add(pid)
    return chain


def stray_pids(lab_dir: Path) -> list[int]:
    """Lab programs not in the record (a crash between spawn and save): their argv names the lab dir.

    Never this process nor its ancestors: `pbctl lab down --dir DIR` runs the pbctl-lab plugin as a child, and
    the parent pbctl (python3, DIR in its argv) is not a stray."""
    prefix = str(lab_dir)
    spared = _ancestry(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spared:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        if not argv or os.path.basename(argv[0]) not in _SWEEP_PROGRAMS:
            continue
        if any(a == prefix or a.startswith(prefix + "/") or ("=" + prefix) in a for a in argv[1:]):
            found.append(int(entry))
    return found


# ---- the relays: root-namespace loopback -> a control-plane address -------------------------------


def start_relay(st: LabState, name: str = "apiserver-relay", *, port_key: str = "relay_port",
                want: int = ports.APISERVER, target: str = f"127.0.0.1:{ports.APISERVER}") -> ProcessRecord:
    """Listen on 127.0.0.1:<port> in the root namespace; connect to `target` from the control plane.

    The listening socket is made here (root namespace) and handed to a relay process that runs inside the
    control-plane namespace, so nothing is routed into the lab from the host. The port is `want` if free
    (else any free port) and is recorded in the state's info under `port_key`.
    """
    want = int(st.info.get(port_key) or want)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", want))
    except OSError:
        sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    try:
        fd = sock.fileno()
        argv = [sys.executable, "-m", "lab.relay", "--fd", str(fd), target]
        rec = spawn(st, name, "relay", argv, netns_name=CP_NETNS, pass_fds=[fd])
    finally:
        sock.close()
    st.info[port_key] = port
    st.info.setdefault("relays", {})[name] = {"port_key": port_key, "target": target}
    st.save()
    return rec
