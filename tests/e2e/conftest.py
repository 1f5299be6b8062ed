"""The e2e `lab` fixture: a whole lab (fast profile) in a temp dir for the session, torn down afterwards.

The lab is driven through its command line (`python -m lab.cli`), as a user would, with KUBECONFIG naming
`<tmp>/home/.kube/config` (seeded with another context) so that the `pybernetes-lab` context `lab up` merges
lands there and never in the real user's kubeconfig; tests run kubectl and pbctl with HOME=<tmp>/home. The
fixture checks afterwards that nothing is left: none of the lab's namespaces, no process naming the
lab dir, no mount under it, and the root namespace's iptables rules exactly as before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from lab import netns
from lab.profiles import PROFILES
from lab.state import LabState
from lab.topology import Plan

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def poll(check: Callable[[], T], timeout: float = 60.0, what: str = "condition", interval: float = 0.5) -> T:
    """`check()`'s first truthy value, tried every `interval` s; an AssertionError (a failed pbctl, an unmet
    expectation) or OSError/ValueError (a refused connection, unparsable output) counts as not yet. Fails
    after `timeout` s naming `what` and the last value or error."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except (AssertionError, OSError, ValueError) as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f} s; last: {last}")
        time.sleep(interval)


def root_rules() -> str:
    """The root namespace's iptables rules without counters or comments."""
    out = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    return "\n".join(line.split(" [")[0] if line.startswith(":") else line
                     for line in out.splitlines() if not line.startswith("#"))


def lab_pids(lab_dir: Path) -> list[str]:
    """Live (non-zombie) processes whose command line names the lab dir."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace").split("\0")
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if stat != "Z" and any(str(lab_dir) in a for a in argv):
            found.append(f"{entry}: {' '.join(argv)[:160]}")
    return found


def mounts_under(lab_dir: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(lab_dir))]


@dataclass
class Lab:
    dir: Path
    rules_before: str
    home: Path  # the HOME whose ~/.kube/config `lab up` merges its context into (through KUBECONFIG)
    up_output: str = ""
    namespaces: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.home / ".kube" / "config"

    @property
    def admin(self) -> Path:
        return self.dir / "admin.conf"

    def cli(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "lab.cli", *args[:1], "--dir", str(self.dir),
                              *args[1:]], capture_output=True, text=True, timeout=timeout, cwd=REPO,
                             env=dict(os.environ, KUBECONFIG=str(self.kubeconfig)))
        if check and res.returncode != 0:
            raise AssertionError(f"lab {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res

    def pbctl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        res = subprocess.run([sys.executable, "-m", "pbctl.main", "--config", str(self.admin), *args],
                             capture_output=True, text=True, timeout=timeout, cwd=REPO)
        if check and res.returncode != 0:
            raise AssertionError(f"pbctl {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def in_node(self, node: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        return subprocess.run(netns.nsenter(f"pb-{node}", list(cmd)), capture_output=True, text=True,
                              timeout=timeout)

    def state(self) -> LabState:
        st = LabState.load(self.dir)
        assert st is not None, f"no state in {self.dir}"
        return st

    def leftovers(self) -> list[str]:
        problems = [f"namespace {ns}" for ns in self.namespaces if netns.exists(ns)]
        problems += [f"process {p}" for p in lab_pids(self.dir)]
        problems += [f"mount {m}" for m in mounts_under(self.dir)]
        if root_rules() != self.rules_before:
            problems.append("root namespace iptables rules changed")
        if self.dir.exists():
            problems.append(f"directory {self.dir}")
        return problems


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    for prog in ("containerd", "etcd", "docker-registry", "skopeo", "umoci", "nsenter"):
        if shutil.which(prog) is None:
            pytest.skip(f"{prog} not installed")
    plan = Plan(dir=tmp_path_factory.mktemp("lab") / "lab", workers=3, profile=PROFILES["fast"])
    busy = [ns for ns in plan.namespaces if netns.exists(ns)]
    if busy:
        pytest.skip(f"a lab is already running here ({', '.join(busy)}); `pbctl lab down` it first")
    lab = Lab(dir=plan.dir, rules_before=root_rules(), home=plan.dir.parent / "home", namespaces=plan.namespaces)
    seed_kubeconfig(lab.kubeconfig)
    try:
        # PB_LAB_ETCD_MEMBERS=3: a three-member etcd (the chaos run then measures losing its leader).
        members = os.environ.get("PB_LAB_ETCD_MEMBERS", "1")
        res = lab.cli("up", "--profile", "fast", "--etcd-members", members, check=False)
        lab.up_output = res.stdout + res.stderr
        if res.returncode != 0:
            raise AssertionError(f"lab up failed:\n{lab.up_output}")
        yield lab
    finally:
        if lab.dir.exists():
            down = lab.cli("down", check=False)
            assert down.returncode == 0, f"lab down failed:\n{down.stdout}\n{down.stderr}"
        left = lab.leftovers()
        assert not left, f"lab down left: {left}"


# A context of the user's own that `lab up` and `lab down` must leave as it is.
OTHER_CONTEXT = "elsewhere"


def seed_kubeconfig(path: Path) -> None:
    from pybernetes.client import config as client_config

    client_config.write_kubeconfig(path, "https://192.0.2.1:6443", "192.0.2.1:6442", "other-token", b"",
                                   name=OTHER_CONTEXT)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lab_teardown: runs after every other e2e test (it takes the lab down)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The lab is shared by the whole session: tests that take it down run last, whatever their file."""
    items.sort(key=lambda item: item.get_closest_marker("lab_teardown") is not None)
