"""The client retries reads answered Unavailable (a restarting apiserver, an etcd failover) a bounded number of
times, and never a write; every verb answered TooManyRequests (the apiserver's in-flight limit) after its
Retry-After, a bounded number of times; other errors are not retried."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from pybernetes import errors, rpc
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


class Throttled(Flaky):
    """RESOURCE_EXHAUSTED with the apiserver's TooManyRequests Status (retryAfterSeconds 2) `failures` times."""

    async def __call__(self, request: Any, **kw: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            st = rpc.status_of(errors.TooManyRequests("Too many requests", retry_after_seconds=2))
            raise grpc.aio.AioRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(),
                                       grpc.aio.Metadata((rpc.STATUS_KEY, st.SerializeToString())), "throttled")
        return self.answer


async def test_too_many_requests_is_retried_for_every_verb_after_retry_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
    monkeypatch.setattr("pybernetes.client.client.asyncio.sleep", sleep)
    async with Client("127.0.0.1:1", throttle_retries=3) as c:
        cm = core.ConfigMap(metadata={"name": "cm", "namespace": "default"})
        create = Throttled(3, answer=codec.to_envelope(cm))
        monkeypatch.setattr(c._stub, "Create", create)
        assert (await c.create(cm)).metadata.name == "cm" and create.calls == 4
        assert len(slept) == 3 and all(2 <= s <= 3 for s in slept)  # Retry-After, plus up to 50 % jitter
        delete = Throttled(10)
        monkeypatch.setattr(c._stub, "Delete", delete)
        with pytest.raises(errors.TooManyRequests) as gave_up:
            await c.delete(core.ConfigMap, "cm", namespace="default")
        assert delete.calls == 4 and gave_up.value.code == 429 and gave_up.value.retry_after_seconds == 2


async def test_a_bare_resource_exhausted_is_still_too_large_and_not_retried(client: Client,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    create = Flaky(1, code=grpc.StatusCode.RESOURCE_EXHAUSTED)  # grpc's own message-size refusal: no Status
    monkeypatch.setattr(client._stub, "Create", create)
    with pytest.raises(errors.TooLarge):
        await client.create(core.ConfigMap(metadata={"name": "cm", "namespace": "default"}))
    assert create.calls == 1
