"""The client retries reads answered Unavailable (a restarting apiserver, an etcd failover) a bounded number of
times, and never a write; other errors are not retried."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from pybernetes import errors
from pybernetes.api import codec
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.client.client import Client


class Flaky:
    """A unary method that fails with `code` `failures` times, then answers `answer`."""

    def __init__(self, failures: int, answer: Any = None, code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> None:
        self.failures, self.answer, self.code, self.calls = failures, answer, code, 0

    async def __call__(self, request: Any, **kw: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), "connection refused")
        return self.answer


@pytest.fixture
async def client(monkeypatch: pytest.MonkeyPatch) -> Any:
    async def fast(_: float) -> None:
        return None
    monkeypatch.setattr("pybernetes.client.client.asyncio.sleep", fast)
    c = Client("127.0.0.1:1", read_retries=3)
    yield c
    await c.close()


async def test_a_read_is_retried_until_it_answers(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = core.ConfigMap()
    answer.metadata.name = "cm"
    get = Flaky(3, answer=codec.to_envelope(answer))
    monkeypatch.setattr(client._stub, "Get", get)
    got = await client.get(core.ConfigMap, "cm", namespace="default")
    assert got.metadata.name == "cm" and get.calls == 4


async def test_a_read_gives_up_after_its_retries(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    get = Flaky(10)
    monkeypatch.setattr(client._stub, "Get", get)
    with pytest.raises(errors.Unavailable):
        await client.get(core.ConfigMap, "cm", namespace="default")
    assert get.calls == 4


async def test_other_errors_and_writes_are_not_retried(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    get = Flaky(1, code=grpc.StatusCode.NOT_FOUND)
    monkeypatch.setattr(client._stub, "Get", get)
    with pytest.raises(errors.NotFound):
        await client.get(core.ConfigMap, "cm", namespace="default")
    create = Flaky(1)
    monkeypatch.setattr(client._stub, "Create", create)
    with pytest.raises(errors.Unavailable):
        await client.create(core.ConfigMap(metadata={"name": "cm", "namespace": "default"}))
    assert get.calls == 1 and create.calls == 1
