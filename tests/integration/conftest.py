"""Shared integration fixtures: real processes (etcd, ...) on loopback, random ports, tmp dirs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.apiserver.storage.embedded import EmbeddedEtcd, free_port

__all__ = ["etcd", "free_port"]


@pytest.fixture
async def etcd(tmp_path: Path) -> AsyncIterator[EmbeddedEtcd]:
    """A fresh single-member etcd (use .endpoint; .kill()/.start() for outages), killed at teardown."""
    server = EmbeddedEtcd(
        tmp_path / "etcd",
        client_port=free_port(),
        peer_port=free_port(),
        progress_notify_interval="1s",  # so bookmark/progress paths are exercised within a test's time
        extra_args=["--heartbeat-interval=20", "--election-timeout=200"],  # single member: elect at once
    )
    await server.start()
    try:
        yield server
    finally:
        await server.kill()
