"""The lab's record of everything it made: <lab-dir>/state.json.

`lab up` writes an entry *before* it creates a thing (a namespace, a directory, a node's containerd dir)
and right after it starts a process (pid plus the kernel's start time, so a recycled pid is never
killed by mistake). The file is rewritten atomically after every change, so after a crash at any point
`lab down` still finds, and removes, exactly what this lab made — nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"
VERSION = 1


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (field 3 on); None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name is parenthesised and may contain spaces: split after the last ')'.
    return stat.rsplit(")", 1)[1].split()


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks after boot); None if there is no such process."""
    rest = _stat_fields(pid)
    return None if rest is None else int(rest[19])


def proc_state(pid: int) -> str:
    rest = _stat_fields(pid)
    return "" if rest is None else rest[0]


def proc_ppid(pid: int) -> int | None:
    """Field 4 of /proc/PID/stat (the parent's pid); None if there is no such process."""
    rest = _stat_fields(pid)
    return None if rest is None else int(rest[1])


@dataclass
class ProcessRecord:
    """One process the lab started (through `nsenter --net`, which execs: the pid is the program's)."""

    name: str  # unique key, e.g. "apiserver", "kubelet/node-2"
    component: str  # apiserver, etcd, scheduler, controller-manager, kubelet, proxy, containerd, registry, ...
    argv: list[str]  # the full command line, nsenter included (used again by `lab start`)
    log: str
    netns: str = ""
    node: str = ""
    pid: int = 0
    start_time: int = 0
    started_at: float = 0.0

    def alive(self) -> bool:
        """True if the recorded pid is still the process we started (and not a zombie)."""
        if self.pid <= 0:
            return False
        st = proc_start_time(self.pid)
        return st is not None and st == self.start_time and proc_state(self.pid) not in ("Z", "X", "")

    def signal(self, sig: int) -> bool:
        """Signal the process group we started (start_new_session: pgid == pid), only if it is still ours."""
        if not self.alive():
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)
        return True

    def stop(self, grace: float = 10.0) -> bool:
        """SIGTERM, wait up to `grace` seconds, then SIGKILL. Returns True if it was running."""
        if not self.signal(signal.SIGTERM):
            _reap(self.pid)
            return False
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            _reap(self.pid)
            if not self.alive():
                return True
            time.sleep(0.05)
        self.signal(signal.SIGKILL)
        for _ in range(100):
            _reap(self.pid)
            if not self.alive():
                break
            time.sleep(0.02)
        return True


def _reap(pid: int) -> None:
    """Collect the exit status if the process happens to be our child (avoids zombies in-process)."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


@dataclass
class LabState:
    dir: str
    profile: str = "default"
    workers: int = 0
    complete: bool = False  # set when `lab up` finished
    created_at: float = 0.0
    namespaces: list[str] = field(default_factory=list)
    dirs: list[str] = field(default_factory=list)
    # Directories whose mounts (overlay rootfs, shm, pod netns) must be unmounted, e.g. containerd node dirs.
    mounts: list[str] = field(default_factory=list)
    # node name -> {"dir": containerd base dir, "netns": ..., "pod_cidr": ..., "socket": ...}
    containerd: dict[str, dict[str, str]] = field(default_factory=dict)
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # addresses, admin.conf path, nodes, ports

    @property
    def path(self) -> Path:
        return Path(self.dir) / STATE_FILE

    # -- persistence -------------------------------------------------------------------------------

    def save(self) -> None:
        Path(self.dir).mkdir(parents=True, exist_ok=True)
        doc = asdict(self)
        doc["version"] = VERSION
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, lab_dir: str | os.PathLike[str]) -> LabState | None:
        path = Path(lab_dir) / STATE_FILE
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise RuntimeError(f"unreadable lab state {path}: {e}") from e
        doc.pop("version", None)
        procs = {k: ProcessRecord(**v) for k, v in doc.pop("processes", {}).items()}
        st = cls(**doc)
        st.processes = procs
        return st

    # -- recording ---------------------------------------------------------------------------------

    def add_namespace(self, name: str) -> None:
        if name not in self.namespaces:
            self.namespaces.append(name)
            self.save()

    def add_dir(self, path: str | os.PathLike[str]) -> None:
        p = str(path)
        if p not in self.dirs:
            self.dirs.append(p)
            self.save()

    def add_mount_root(self, path: str | os.PathLike[str]) -> None:
        p = str(path)
        if p not in self.mounts:
            self.mounts.append(p)
            self.save()

    def add_process(self, rec: ProcessRecord) -> None:
        self.processes[rec.name] = rec
        self.save()

    def find(self, component: str, node: str = "") -> list[ProcessRecord]:
        return [p for p in self.processes.values()
                if p.component == component and (not node or p.node == node)]
