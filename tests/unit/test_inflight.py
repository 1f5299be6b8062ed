"""The apiserver's in-flight limiter: two budgets, long-running requests uncounted, the exemptions (system:masters,
the node heartbeat, leader election), 429 with retryAfterSeconds, and a slot freed however the request ends."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from prometheus_client import REGISTRY

from pybernetes import errors
from services.apiserver.auth import User
from services.apiserver.http import status
from services.apiserver.inflight import MUTATING, READ_ONLY, InflightLimiter, exempt, long_running
from services.apiserver.main import parse_args

ALICE = User("alice", groups=("system:authenticated",))
ADMIN = User("kubernetes-admin", groups=("system:masters", "system:authenticated"))
NODE = User("system:node:n1", groups=("system:nodes", "system:authenticated"))
SCHEDULER = User("system:kube-scheduler", groups=("system:authenticated",))


def dropped(kind: str) -> float:
    return REGISTRY.get_sample_value("apiserver_dropped_requests_total", {"request_kind": kind}) or 0.0


def test_each_budget_refuses_the_request_past_it_with_429_and_retry_after() -> None:
    lim = InflightLimiter(max_read_only=2, max_mutating=1)
    before = dropped(MUTATING)
    with contextlib.ExitStack() as held:
        held.enter_context(lim.hold(ALICE, "get", "pods"))
        held.enter_context(lim.hold(ALICE, "list", "pods"))
        held.enter_context(lim.hold(ALICE, "create", "pods"))
        assert lim.current == {READ_ONLY: 2, MUTATING: 1}
        assert REGISTRY.get_sample_value("apiserver_current_inflight_requests", {"request_kind": READ_ONLY}) == 2
        with pytest.raises(errors.TooManyRequests) as refused, lim.hold(ALICE, "get", "pods"):
            pass
        with pytest.raises(errors.TooManyRequests), lim.hold(ALICE, "patch", "pods"):
            pass
    e = refused.value
    assert (e.code, e.reason, e.retry_after_seconds) == (429, "TooManyRequests", 1)
    assert status.failure(e)["details"] == {"retryAfterSeconds": 1}
    assert dropped(MUTATING) == before + 1
    assert lim.current == {READ_ONLY: 0, MUTATING: 0}


def test_the_budgets_are_separate_and_zero_is_no_limit() -> None:
    lim = InflightLimiter(max_read_only=1, max_mutating=0)
    with lim.hold(ALICE, "get", "pods"), contextlib.ExitStack() as writes:
        for _ in range(50):  # mutating unlimited, and a full read-only budget does not touch it
            writes.enter_context(lim.hold(ALICE, "update", "pods"))
        assert lim.current == {READ_ONLY: 1, MUTATING: 0}
    with pytest.raises(ValueError):
        InflightLimiter(-1, 0)


def test_long_running_requests_are_not_counted() -> None:
    lim = InflightLimiter(max_read_only=1, max_mutating=1)
    with lim.hold(ALICE, "get", "pods"), lim.hold(ALICE, "create", "pods"):
        for verb, resource, sub in [("watch", "pods", ""), ("get", "pods", "log"), ("create", "pods", "exec"),
                                    ("create", "pods", "attach"), ("create", "pods", "portforward"),
                                    ("get", "nodes", "proxy")]:
            with lim.hold(ALICE, verb, resource, sub):
                pass
        with lim.hold(ALICE, "get", "pods/log"):  # the gRPC front end's spelling
            pass
    assert long_running("watch", "") and long_running("get", "log") and not long_running("list", "status")


def test_the_exemptions_follow_apf_bootstrap_schemas() -> None:
    assert exempt(ADMIN, "delete", "secrets")
    for verb, resource, sub in [("update", "leases", ""), ("get", "leases", ""), ("patch", "nodes", "status"),
                                ("update", "nodes", ""), ("create", "nodes", "")]:
        assert exempt(NODE, verb, resource, sub), (verb, resource, sub)
    assert not exempt(NODE, "get", "pods") and not exempt(NODE, "update", "pods", "status")
    assert not exempt(NODE, "update", "configmaps")
    for verb in ("get", "create", "update"):
        assert exempt(SCHEDULER, verb, "leases")
        assert exempt(User("system:serviceaccount:kube-system:ctrl"), verb, "leases")
    assert not exempt(SCHEDULER, "delete", "leases") and not exempt(SCHEDULER, "create", "pods", "binding")
    assert not exempt(User("system:serviceaccount:default:app"), "update", "leases")
    assert not exempt(ALICE, "update", "leases") and not exempt(None, "get", "pods")


def test_exempt_requests_are_served_over_budget_and_not_counted() -> None:
    lim = InflightLimiter(max_read_only=1, max_mutating=1)
    with lim.hold(ALICE, "list", "pods"), lim.hold(ALICE, "create", "pods"):
        with lim.hold(ADMIN, "create", "pods"), lim.hold(NODE, "update", "leases"), \
                lim.hold(NODE, "update", "nodes/status"), lim.hold(SCHEDULER, "get", "leases"):
            assert lim.current == {READ_ONLY: 1, MUTATING: 1}
        with pytest.raises(errors.TooManyRequests), lim.hold(NODE, "list", "pods"):
            pass


def test_a_request_that_raises_frees_its_slot() -> None:
    lim = InflightLimiter(max_read_only=1, max_mutating=1)
    with pytest.raises(errors.Conflict), lim.hold(ALICE, "update", "pods"):
        raise errors.Conflict("changed")
    with pytest.raises(RuntimeError), lim.hold(ALICE, "get", "pods"):
        raise RuntimeError("boom")
    assert lim.current == {READ_ONLY: 0, MUTATING: 0}
    with lim.hold(ALICE, "update", "pods"), lim.hold(ALICE, "get", "pods"):
        pass


async def test_a_cancelled_request_frees_its_slot() -> None:
    lim = InflightLimiter(max_read_only=1, max_mutating=1)
    entered, never = asyncio.Event(), asyncio.Event()

    async def request() -> None:
        with lim.hold(ALICE, "create", "pods"):
            entered.set()
            await never.wait()

    task = asyncio.create_task(request())
    await entered.wait()
    assert lim.current[MUTATING] == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert lim.current[MUTATING] == 0


def test_flags_have_kubernetes_defaults_and_refuse_negatives(capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_args([])
    assert (cfg.max_requests_inflight, cfg.max_mutating_requests_inflight) == (400, 200)
    cfg = parse_args(["--max-requests-inflight=1", "--max-mutating-requests-inflight=0"])
    assert (cfg.max_requests_inflight, cfg.max_mutating_requests_inflight) == (1, 0)
    with pytest.raises(SystemExit) as exited:
        parse_args(["--max-mutating-requests-inflight=-1"])
    assert exited.value.code == 2 and "--max-mutating-requests-inflight" in capsys.readouterr().err
