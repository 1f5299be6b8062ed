"""`pbctl dashboard` against the lab, through headless Chromium (tests/browser.py): the page shows the three nodes
and the demo's pods on them; a deleted pod's replacement appears within 3 s and the deleted one leaves; scaling
to 6 shows 6; etcd's members appear with their leader; stopping node-2's proxy greys its kube-proxy; stopping
node-2's kubelet marks node-2 NotReady on the page. Screenshots in the test's tmp dir (printed); the page's
JavaScript logs no errors. The lab is left as it was found (proxy and kubelet started, 3 replicas). The
dashboard runs as the lab runs it: its own read-only user pybernetes:dashboard (dashboard.conf), not the admin.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lab.profiles import PROFILES
from pybernetes.ports import free_port
from tests.browser import Browser, chromium

from .conftest import REPO, Lab

pytestmark = pytest.mark.e2e
DEMO = REPO / "examples" / "demo.yaml"
HELLO = "document.querySelectorAll('.pod[data-key^=\"default/hello-\"]')"


def node(name: str) -> str:
    return f"document.querySelector('.node[data-key=\"{name}\"]')"


def proxy(name: str) -> str:
    return f"{node(name)}.querySelector('.part[data-part=\"kube-proxy\"]')"


@pytest.fixture
async def page(lab: Lab, tmp_path: Path) -> AsyncIterator[Browser]:
    if chromium() is None:
        pytest.skip("chromium not installed (deploy/install-deps.sh installs it)")
    conf = lab.dir / "dashboard.conf"
    assert conf.exists(), "lab up writes the dashboard's own kubeconfig"
    dash = subprocess.Popen([sys.executable, "-m", "pbctl.main", "--config", str(conf), "dashboard",
                             "--port", str(free_port())], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO)
    try:
        assert dash.stdout is not None
        line = await asyncio.to_thread(dash.stdout.readline)
        assert line.startswith("Dashboard: http://127.0.0.1:"), line
        b = await Browser.launch(tmp_path)
        try:
            await b.goto(line.split()[1])
            yield b
        finally:
            await b.close()
    finally:
        dash.terminate()
        dash.communicate(timeout=10)  # waits, and closes its pipes


async def pbctl(lab: Lab, *args: str) -> str:
    return await asyncio.to_thread(lab.pbctl, *args)


async def test_page_follows_the_lab(lab: Lab, page: Browser, tmp_path: Path) -> None:
    print(f"screenshots: {tmp_path}")
    await pbctl(lab, "apply", "-f", str(DEMO))
    await asyncio.to_thread(lab.pbctl, "rollout", "status", "deployment/hello", "--timeout", "120s", timeout=150)
    await page.wait_for("document.querySelectorAll('.node').length === 3", timeout=20)
    await page.wait_for(f"[...{HELLO}].filter(e => e.closest('.node') && e.dataset.status === 'Running')"
                        ".length === 3", timeout=60)
    scheduler = "document.querySelector('.component[data-key=scheduler]')"
    if PROFILES["fast"].scheduler.get("leader_elect", True):
        await page.wait_for(f"{scheduler}.dataset.health === 'ok'", 20)
    else:  # the fast lab runs one scheduler without leader election: no Lease shows its health, and the page says so
        await page.wait_for(f"{scheduler}.dataset.health === 'unknown' && "
                            f"{scheduler}.textContent.includes('without leader election')", 20)
    # etcd's members (the apiserver's EtcdStatus): every one answering, one marked leader, with its DB size.
    members = "document.querySelectorAll('.component[data-key=etcd] .member')"
    await page.wait_for(f"{members}.length >= 1 && [...{members}].filter(e => e.dataset.leader === 'true')"
                        ".length === 1", timeout=20)
    leader = await page.eval(f"[...{members}].find(e => e.dataset.leader === 'true').textContent")
    assert "leader" in leader and "iB" in leader, leader
    assert await page.eval(f"[...{members}].filter(e => e.classList.contains('m-down')).length") == 0
    for n in ("node-1", "node-2", "node-3"):  # each proxy's Lease renewed
        await page.wait_for(f"{proxy(n)}?.dataset.health === 'ok'", timeout=30)
    await page.screenshot(tmp_path / "dashboard-lab.png")

    # A deleted pod: its replacement appears within 3 s, and it leaves once its kubelet has stopped it.
    before = set(await page.eval(f"[...{HELLO}].map(e => e.dataset.key)"))
    victim = sorted(before)[0]
    await pbctl(lab, "delete", "pod", victim.split("/")[1], "--wait=false")
    known = "[" + ",".join(f"'{k}'" for k in before) + "]"
    await page.wait_for(f"[...{HELLO}].some(e => !{known}.includes(e.dataset.key))", timeout=3)
    await page.wait_for(f"document.querySelector('.pod[data-key=\"{victim}\"]') === null", timeout=30)

    # Scaling to 6 shows 6.
    await pbctl(lab, "scale", "deployment/hello", "--replicas=6")
    await page.wait_for(f"{HELLO}.length === 6", timeout=3)
    await page.wait_for(f"[...{HELLO}].filter(e => e.dataset.status === 'Running').length === 6", timeout=90)

    # node-2's proxy stopped: its kube-proxy greys (its Lease released), the node stays Ready.
    await asyncio.to_thread(lab.cli, "stop", "proxy", "--node", "node-2")
    try:
        await page.wait_for(f"['stopped', 'stale'].includes({proxy('node-2')}.dataset.health)", timeout=60)
        assert await page.eval(f"{node('node-2')}.dataset.status") == "Ready"
        assert await page.eval(f"{proxy('node-1')}.dataset.health") == "ok"
        assert "node-2 kube-proxy" in await page.eval("document.getElementById('impact').textContent")
        await page.screenshot(tmp_path / "dashboard-lab-node-2-proxy-down.png")
    finally:
        await asyncio.to_thread(lab.cli, "start", "proxy", "--node", "node-2")
    await page.wait_for(f"{proxy('node-2')}.dataset.health === 'ok'", timeout=60)

    # node-2's kubelet stopped: node-2 turns NotReady (or Unknown) on the page, greyed out and labelled.
    await asyncio.to_thread(lab.cli, "stop", "kubelet", "--node", "node-2")
    try:
        await page.wait_for(f"{node('node-2')}.dataset.status !== 'Ready'", timeout=90)
        label = await page.eval(f"{node('node-2')}.querySelector('.nstat').textContent")
        assert label.startswith(("NotReady", "Unknown")), label
        await page.screenshot(tmp_path / "dashboard-lab-node-2-down.png")
    finally:
        await asyncio.to_thread(lab.cli, "start", "kubelet", "--node", "node-2")
    await page.wait_for(f"{node('node-2')}.dataset.status === 'Ready'", timeout=90)
    await pbctl(lab, "scale", "deployment/hello", "--replicas=3")
    await page.wait_for(f"{HELLO}.length === 3", timeout=90)
    assert page.errors == [], page.errors
    assert await page.eval("window.pbDashboard.errors") == []
