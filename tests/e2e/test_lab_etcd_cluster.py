"""A lab with a three-member etcd (`lab up --etcd-members 3 --workers 1`), after the shared lab is down: the
members and their leader in `lab status`, the API still serving with one member stopped, the member back
after `lab start etcd-2`, and `lab down` leaving nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from lab import netns
from lab.profiles import PROFILES
from lab.topology import Plan

from .conftest import Lab, poll, root_rules, seed_kubeconfig

pytestmark = pytest.mark.e2e


def etcd_rows(lab: Lab) -> list[dict[str, object]]:
    res = lab.cli("status", "-o", "json", check=False)
    rows: list[dict[str, object]] = json.loads(res.stdout)["etcd"]
    return rows


@pytest.mark.lab_teardown  # runs after the shared lab is down: only one lab fits on a machine
def test_three_member_etcd(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("etcd") is None:
        pytest.skip("the lab needs root and etcd")
    plan = Plan(dir=tmp_path / "lab", workers=1, profile=PROFILES["fast"], etcd_count=3)
    busy = [ns for ns in plan.namespaces if netns.exists(ns)]
    if busy:
        pytest.skip(f"a lab is running here ({', '.join(busy)})")
    lab = Lab(dir=plan.dir, rules_before=root_rules(), home=tmp_path / "home", namespaces=plan.namespaces)
    seed_kubeconfig(lab.kubeconfig)
    try:
        lab.cli("up", "--profile", "fast", "--workers", "1", "--etcd-members", "3", timeout=300)
        rows = etcd_rows(lab)
        assert [r["member"] for r in rows] == ["etcd-1", "etcd-2", "etcd-3"], rows
        assert sum(bool(r.get("leader")) for r in rows) == 1 and all("error" not in r for r in rows), rows
        assert "etcd-servers=https://127.0.0.1:2379,https://127.0.0.1:12379,https://127.0.0.1:22379" in \
            " ".join(lab.state().processes["apiserver"].argv)
        table = lab.cli("status").stdout
        assert "RAFT INDEX" in table and "DB SIZE" in table, table

        lab.cli("stop", "etcd-2")
        rows = etcd_rows(lab)
        assert rows[1].get("error") == "stopped" and sum(bool(r.get("leader")) for r in rows) == 1, rows
        ns = tmp_path / "ns.yaml"
        ns.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: with-two-members\n")
        lab.pbctl("apply", "-f", str(ns))  # a quorum of two still takes writes
        assert "with-two-members" in lab.pbctl("get", "namespaces")
        lab.cli("start", "etcd-2")
        poll(lambda: all("error" not in r for r in etcd_rows(lab)), 60, "etcd-2 back in the cluster")
        # etcd-2 caught up (polled: the kubelet's lease renewals keep writing between the three reads)
        poll(lambda: len({r["revision"] for r in etcd_rows(lab)}) == 1, 30, "one revision on every member")
    finally:
        if lab.dir.exists():
            down = lab.cli("down", check=False)
            assert down.returncode == 0, f"lab down failed:\n{down.stdout}\n{down.stderr}"
        assert not lab.leftovers(), lab.leftovers()
