"""The control plane's health for the dashboard: the apiserver's /readyz when reachable (HTTPS checked against
the TLS context the caller gives: pbctl's is the kubeconfig's cluster CA), else whether the API answers;
etcd's members from the apiserver's EtcdStatus; and, on the same beat, `Model.tick` so expired
Leases grey their node or component out.

Callers: `pbctl.dashboard.server` runs `probe_forever`. One small request every few seconds, never a list:
the state itself arrives through watches.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

import aiohttp

from pbctl.dashboard import views
from pbctl.dashboard.model import Model
from pybernetes import errors
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client

log = logging.getLogger(__name__)
INTERVAL = 3.0


async def readyz(session: aiohttp.ClientSession, url: str) -> tuple[int, str] | None:
    """(status, body) of GET url?verbose, or None when nothing answers there."""
    try:
        async with session.get(url, params={"verbose": "1"}, timeout=aiohttp.ClientTimeout(total=2)) as r:
            return r.status, await r.text()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return None


async def check_once(model: Model, client: Client, session: aiohttp.ClientSession, url: str) -> None:
    answer = await readyz(session, url) if url else None
    if answer is not None:
        status, body = answer
        failed = [line[3:] for line in body.splitlines() if line.startswith("[-]")]
        if status == 200:
            model.set_health("apiserver", "ok", "/readyz ok")
        else:
            model.set_health("apiserver", "failing", "; ".join(failed) or f"/readyz answered {status}")
        etcd_failed = [f for f in failed if f.startswith("etcd")]
        model.set_health("etcd", "failing" if etcd_failed else "ok",
                         etcd_failed[0] if etcd_failed else "the apiserver's etcd check passes")
        return
    try:
        await client.get(core.Namespace, "default")
    except errors.NotFound:
        pass  # an answer all the same
    except errors.ApiError as e:
        if isinstance(e, errors.Unavailable) and "unreachable" in str(e):
            model.set_health("apiserver", "failing", f"the API does not answer: {e}")
            model.set_health("etcd", "unknown", "the apiserver does not answer")
        else:  # it answered, with an error: most likely its storage's
            model.set_health("apiserver", "ok", f"the API answers, with errors: {e}")
            model.set_health("etcd", "failing" if "etcd" in str(e).lower() else "unknown", str(e))
        return
    model.set_health("apiserver", "ok", "the API answers (/readyz not reachable from here)")
    model.set_health("etcd", "ok", "inferred: the apiserver reads from it")


async def etcd_members(model: Model, client: Client) -> None:
    """etcd's members, leader and DB sizes. Polled on the probe's beat (one small RPC): etcd's member status
    (Maintenance.Status, Cluster.MemberList) is not watchable, unlike everything else on the page."""
    try:
        st = await client.etcd_status()
    except errors.ApiError as e:
        model.set_etcd_members([], f"etcd members unknown: {e}")
        return
    model.set_etcd_members([views.etcd_member_view(m) for m in st.members])


def new_session(tls: ssl.SSLContext | None = None) -> aiohttp.ClientSession:
    """The probe's HTTP session; `tls`: the context an https:// /readyz is checked with (None: the system's)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls if tls is not None else True))


async def probe_forever(model: Model, client: Client, url: str, interval: float = INTERVAL,
                        tls: ssl.SSLContext | None = None) -> None:
    async with new_session(tls) as session:
        while True:
            try:
                await check_once(model, client, session, url)
                await etcd_members(model, client)
                model.tick()
            except Exception:  # a probe must never end the dashboard
                log.exception("dashboard health probe failed")
            await asyncio.sleep(interval)
