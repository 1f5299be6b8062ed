"""The apiserver's embedded etcd serves TLS and accepts no client but the apiserver: a gRPC client or `etcdctl`
on the same host without a client certificate, with one from another CA, or in plaintext, is refused at the
handshake, while the apiserver (apiserver-etcd-client, signed by etcd/ca) reads and writes."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from pybernetes import pkiutil, tls
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.ports import free_port
from services.apiserver.storage.etcd import EtcdClient, EtcdTLS, StorageUnavailable
from tests.integration.test_etcd_snapshot import Standalone

pytestmark = pytest.mark.integration


async def _etcdctl(endpoint: str, *flags: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "etcdctl", f"--endpoints={endpoint}", "--command-timeout=3s", *flags, "get", "/registry/namespaces/",
        "--prefix", "--keys-only", env={**os.environ, "ETCDCTL_API": "3"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def _refused(client: EtcdClient) -> None:
    try:
        with pytest.raises(StorageUnavailable):
            await client.status()
    finally:
        await client.close()


async def test_embedded_etcd_accepts_only_the_apiserver(tmp_path: Path) -> None:
    srv = Standalone(tmp_path / "apiserver")
    port = srv.cfg.etcd_client_port = free_port()
    await srv.start()
    try:
        async with srv.client() as c:  # the apiserver reads and writes through its client certificate
            ns = core.Namespace()
            ns.metadata.name = "tls-check"
            await c.create(ns)
            assert (await c.get(core.Namespace, "tls-check")).metadata.name == "tls-check"
        pki = srv.cfg.data_dir / "pki"
        ca = pki / "etcd" / "ca.crt"
        assert (pki / "etcd" / "ca.key").stat().st_mode & 0o077 == 0
        endpoint = f"https://127.0.0.1:{port}"
        apiserver = tls.CertPair(pki / "apiserver-etcd-client.crt", pki / "apiserver-etcd-client.key")
        # What the refusals are measured against: the apiserver's certificate is let in, and sees its writes.
        own = EtcdClient([endpoint], tls=EtcdTLS(ca, apiserver), timeout=3)
        try:
            found = await own.range(b"/registry/namespaces/", prefix=True)
            assert b"/registry/namespaces/tls-check" in [kv.key for kv in found.kvs]
            [member] = await own.members()  # each member asked over TLS too (`pbctl etcd status`'s rows)
            assert member.client_urls == [endpoint] and member.status is not None, member.error
        finally:
            await own.close()
        # No client certificate; one from another CA naming the apiserver's own user; plaintext: all refused.
        foreign = pkiutil.ensure_client_cert(tmp_path / "foreign", "apiserver-etcd-client", tls.ETCD_CLIENT_NAME,
                                         (tls.MASTERS_GROUP,))
        await _refused(EtcdClient([endpoint], tls=EtcdTLS(ca), timeout=3))
        await _refused(EtcdClient([endpoint], tls=EtcdTLS(ca, foreign), timeout=3))
        await _refused(EtcdClient([f"http://127.0.0.1:{port}"], timeout=3))
        if shutil.which("etcdctl") is None:
            return
        # etcdctl from another process on this host: the same.
        code, out = await _etcdctl(endpoint, f"--cacert={ca}")
        assert code != 0 and "tls-check" not in out, out
        code, out = await _etcdctl(endpoint, f"--cacert={ca}", f"--cert={foreign.cert}", f"--key={foreign.key}")
        assert code != 0 and "tls-check" not in out, out
        code, out = await _etcdctl(f"http://127.0.0.1:{port}")
        assert code != 0 and "tls-check" not in out, out
        code, out = await _etcdctl(endpoint, f"--cacert={ca}", f"--cert={apiserver.cert}", f"--key={apiserver.key}")
        assert code == 0 and "/registry/namespaces/tls-check" in out, out
    finally:
        await srv.stop()


async def test_https_etcd_servers_need_the_ca(tmp_path: Path) -> None:
    from pybernetes import errors
    from services.apiserver.main import Config, run

    cfg = Config(data_dir=tmp_path / "apiserver", grpc_port=free_port(), secure_port=free_port(),
                 etcd_servers=["https://127.0.0.1:1"])
    with pytest.raises(errors.ConfigError, match="--etcd-cafile"):
        await run(cfg)
    cfg.etcd_cafile, cfg.etcd_certfile = tmp_path / "ca.crt", tmp_path / "client.crt"
    with pytest.raises(errors.ConfigError, match="--etcd-certfile and --etcd-keyfile go together"):
        await run(cfg)
