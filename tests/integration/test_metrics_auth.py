"""Who may read a component's /metrics (pybernetes.secureserving) over real TLS with real certificates:
no certificate 401, a foreign CA's refused at the handshake, a user RBAC does not let get /metrics 403, the
Prometheus identity (group system:monitoring) and system:masters 200; health paths open to anyone.

The scheduler asks the apiserver with SubjectAccessReviews as system:kube-scheduler (its own RBAC role); the
apiserver's health port authorizes in process. The table of outcomes is printed."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import ssl
from pathlib import Path

import pytest

from pybernetes import pkiutil, tls
from pybernetes.metrics import HealthServer
from pybernetes.secureserving import Caller, Decision, SubjectAccessReviewer, delegated
from services.scheduler import main as scheduler_main
from tests.integration.conftest import ApiServer

pytestmark = pytest.mark.integration

MONITORING = "system:monitoring"


def https_get(port: int, path: str, ca: Path, pair: tls.CertPair | None) -> tuple[int, str]:
    """GET over TLS verifying the server against `ca` (hostname 127.0.0.1), presenting `pair`; (-1, error)
    when the handshake is refused."""
    ctx = tls.client_context(ca, pair)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as e:
        return -1, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def identities(pki: Path, tmp: Path) -> dict[str, tls.CertPair | None]:
    other = tmp / "other-pki"
    return {
        "none": None,
        "foreign-ca": pkiutil.ensure_client_cert(other, "intruder", "intruder", [MONITORING]),
        "nobody": pkiutil.ensure_client_cert(pki, "nobody", "nobody"),
        "prometheus": pkiutil.ensure_client_cert(pki, "prometheus", "prometheus", [MONITORING]),
        "admin": tls.CertPair(pki / "admin.crt", pki / "admin.key"),  # system:masters
    }


EXPECTED = {"none": 401, "foreign-ca": -1, "nobody": 403, "prometheus": 200, "admin": 200}


async def matrix(what: str, port: int, ca: Path, ids: dict[str, tls.CertPair | None]) -> None:
    rows = []
    for who, pair in ids.items():
        code, body = await asyncio.to_thread(https_get, port, "/metrics", ca, pair)
        rows.append((who, code))
        assert code == EXPECTED[who], f"{what} {who}: {code} {body[:200]}"
        if code == 401:
            assert json.loads(body)["message"] == "Unauthorized"
        if code == 403:
            status = json.loads(body)
            assert status["reason"] == "Forbidden" and status["code"] == 403
            assert status["message"].startswith('forbidden: User "nobody" cannot get path "/metrics"'), status
        if code == 200:
            assert "pybernetes_asyncio_tasks" in body
        for health in ("/healthz", "/livez", "/readyz"):  # open to anyone who completes the handshake
            if who != "foreign-ca":
                assert (await asyncio.to_thread(https_get, port, health, ca, pair))[0] == 200, (who, health)
    print(f"\n/metrics of {what}:\n" + "\n".join(f"  {who:<12} {code:>4}" for who, code in rows))


async def test_scheduler_metrics_authorized_by_subject_access_review(apiserver: ApiServer, tmp_path: Path) -> None:
    pki = apiserver.pki
    serving = pkiutil.ensure_cert(pki, "scheduler-serving", common_name="kube-scheduler", server=True,
                              dns=["localhost"], ips=["127.0.0.1"])
    cfg = scheduler_main.Config(kubeconfig=str(apiserver.kubeconfig_for("system:kube-scheduler")),
                                leader_elect=False, health_port=0, client_ca_file=pki / "ca.crt",
                                tls_cert_file=serving.cert, tls_private_key_file=serving.key)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(scheduler_main.run(cfg, ready, stop))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        await matrix("pb-scheduler", cfg.health_port, pki / "ca.crt", identities(pki, tmp_path))
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_apiserver_health_port_authorizes_in_process(apiserver: ApiServer, tmp_path: Path) -> None:
    apiserver.cfg.client_ca_file = apiserver.pki / "ca.crt"
    await apiserver.restart()
    await matrix("pb-apiserver", apiserver.cfg.health_port, apiserver.pki / "ca.crt",
                 identities(apiserver.pki, tmp_path))


async def test_self_signed_serving_and_cached_reviews(apiserver: ApiServer, tmp_path: Path) -> None:
    """Without --tls-cert-file the server makes itself a certificate (clients pin or skip it, as Prometheus'
    insecure_skip_verify); answers are cached: the same caller again sends no second review."""
    pki = apiserver.pki
    client = apiserver.new_client("system:kube-scheduler")
    reviewer = SubjectAccessReviewer(client)
    serving = delegated(client, client_ca=pki / "ca.crt", cert_file=None, key_file=None, common_name="x",
                        address="127.0.0.1")
    assert serving is not None
    serving.authorize = reviewer
    srv = HealthServer("127.0.0.1", 0, serving)
    port = await srv.start()
    try:
        prom = pkiutil.ensure_client_cert(pki, "prometheus", "prometheus", [MONITORING])
        ctx = tls.client_context(None, prom)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

        def get() -> int:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
            with contextlib.closing(conn):
                conn.request("GET", "/metrics")
                return conn.getresponse().status
        assert [await asyncio.to_thread(get) for _ in range(3)] == [200, 200, 200]
        assert reviewer.reviews == 1
        assert await reviewer(Caller("nobody"), "get", "/metrics") == Decision(False, "")
        assert await reviewer(Caller("nobody"), "get", "/metrics") == Decision(False, "")
        assert reviewer.reviews == 2
        # with the cache expired the apiserver is asked again
        reviewer.clock = lambda: 1e12
        assert (await reviewer(Caller("nobody"), "get", "/metrics")).allowed is False
        assert reviewer.reviews == 3
    finally:
        await srv.stop()
        await client.close()


async def test_no_client_ca_is_plain_http(tmp_path: Path) -> None:
    """Standalone: no client CA, no serving: plain HTTP as before (the documented fallback)."""
    assert delegated(object(), client_ca=None, cert_file=None, key_file=None, common_name="x",
                     address="127.0.0.1") is None
    srv = HealthServer("127.0.0.1", 0)
    port = await srv.start()
    try:
        def get() -> int:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            with contextlib.closing(conn):
                conn.request("GET", "/metrics")
                return conn.getresponse().status
        assert await asyncio.to_thread(get) == 200 and srv.scheme == "http"
    finally:
        await srv.stop()


async def test_every_component_identity_may_ask_the_reviews(apiserver: ApiServer) -> None:
    """The scheduler, the controller manager (their roles), pb-proxy and pb-dns (bound to system:auth-delegator)
    can authorize a scrape; a user without that binding cannot ask (the review itself is forbidden)."""
    from pybernetes import errors

    prometheus, nobody = Caller("prometheus", (MONITORING,)), Caller("nobody")
    for user in ("system:kube-scheduler", "system:kube-controller-manager", "system:kube-proxy",
                 "system:serviceaccount:kube-system:coredns"):
        client = apiserver.new_client(user)
        try:
            reviewer = SubjectAccessReviewer(client)
            assert (await reviewer(prometheus, "get", "/metrics")).allowed, user
            assert not (await reviewer(nobody, "get", "/metrics")).allowed, user
        finally:
            await client.close()
    apiserver.add_user("someone")
    await apiserver.restart()  # the token file is read at start
    client = apiserver.new_client("someone")
    try:
        with pytest.raises(errors.Forbidden):
            await SubjectAccessReviewer(client)(prometheus, "get", "/metrics")
    finally:
        await client.close()
