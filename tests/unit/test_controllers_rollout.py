"""Deployment rollout arithmetic (services/controllers/deployment_util.py), checked against Kubernetes' numbers."""

from __future__ import annotations

import pytest

from pybernetes.api.apps.v1 import apps_pb2 as apps
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.meta.v1 import meta_pb2 as meta
from services.controllers import deployment_util as du


def ios(v: int | str) -> meta.IntOrString:
    return meta.IntOrString(type=0, int_val=v) if isinstance(v, int) else meta.IntOrString(type=1, str_val=v)


def deploy(replicas: int, surge: int | str | None = "25%", unavailable: int | str | None = "25%",
           strategy: str = "RollingUpdate") -> apps.Deployment:
    d = apps.Deployment()
    d.metadata.name, d.metadata.namespace, d.metadata.generation = "web", "default", 1
    d.spec.replicas = replicas
    d.spec.strategy.type = strategy
    if surge is not None:
        d.spec.strategy.rolling_update.max_surge.CopyFrom(ios(surge))
    if unavailable is not None:
        d.spec.strategy.rolling_update.max_unavailable.CopyFrom(ios(unavailable))
    return d


def rs(name: str, replicas: int, available: int | None = None, created: int = 0,
       max_replicas: int | None = None) -> apps.ReplicaSet:
    r = apps.ReplicaSet()
    r.metadata.name, r.metadata.uid = name, f"uid-{name}"
    r.metadata.creation_timestamp.seconds = created
    r.spec.replicas = replicas
    r.status.replicas = replicas
    r.status.available_replicas = replicas if available is None else available
    if max_replicas is not None:
        r.metadata.annotations[du.MAX_REPLICAS] = str(max_replicas)
    return r


@pytest.mark.parametrize(("surge", "unavailable", "desired", "want"), [
    ("25%", "25%", 10, (3, 2)),     # surge rounds up, unavailable rounds down
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 1, (1, 0)),
    ("25%", "25%", 3, (1, 0)),
    (0, 0, 10, (0, 1)),             # both zero: unavailable becomes 1
    ("0%", "0%", 5, (0, 1)),
    (2, "50%", 5, (2, 2)),
    ("100%", 0, 3, (3, 0)),
    ("10%", "10%", 25, (3, 2)),
])
def test_resolve_fenceposts(surge: int | str, unavailable: int | str, desired: int, want: tuple[int, int]) -> None:
    assert du.resolve_fenceposts(ios(surge), ios(unavailable), desired) == want


def test_bad_percentage_rejected() -> None:
    with pytest.raises(ValueError):
        du.scaled_value(ios("abc"), 10, True)


def test_max_surge_and_unavailable_defaults_and_caps() -> None:
    assert (du.max_surge(deploy(10, None, None)), du.max_unavailable(deploy(10, None, None))) == (3, 2)
    assert du.max_unavailable(deploy(2, 0, 5)) == 2  # capped at replicas
    assert du.max_unavailable(deploy(0)) == 0
    assert du.max_surge(deploy(10, strategy="Recreate")) == 0
    assert du.max_unavailable(deploy(10, strategy="Recreate")) == 0


def test_new_rs_scale_up_steps() -> None:
    d = deploy(10)  # surge 3, unavailable 2
    old, new = rs("old", 10), rs("new", 0)
    assert du.new_rs_new_replicas(d, [old, new], new) == 3
    new = rs("new", 3, available=0)
    assert du.new_rs_new_replicas(d, [old, new], new) == 3  # at 13 = max total already
    # old scaled down to 8: room for 2 more
    old = rs("old", 8)
    assert du.new_rs_new_replicas(d, [old, new], new) == 5
    # never above replicas
    assert du.new_rs_new_replicas(d, [rs("old", 0), rs("new", 9)], rs("new", 9)) == 10
    assert du.new_rs_new_replicas(deploy(10, strategy="Recreate"), [old], None) == 10


def test_old_rs_scale_down_bound() -> None:
    d = deploy(10)  # min available 8
    old, new = rs("old", 10), rs("new", 3, available=0)
    # 13 pods, 8 must stay available, the 3 new ones are unavailable: 2 old may go
    assert du.max_scaled_down(d, [old, new], new) == 2
    new = rs("new", 3, available=3)
    assert du.max_scaled_down(d, [old, new], new) == 5
    assert du.max_scaled_down(d, [rs("old", 8), rs("new", 2, available=0)], rs("new", 2, available=0)) == 0


def test_full_rolling_update_simulation_keeps_bounds() -> None:
    """Drive the rolling-update arithmetic to completion; availability never drops below the minimum."""
    d = deploy(10)  # surge 3, unavailable 2
    old_n, new_n, new_avail = 10, 0, 0
    steps = 0
    while not (new_n == 10 and old_n == 0 and new_avail == 10):
        steps += 1
        assert steps < 50
        old, new = rs("old", old_n), rs("new", new_n, available=new_avail)
        target = du.new_rs_new_replicas(d, [old, new], new)
        if target != new_n:
            new_n = target
        else:
            down = min(old_n, du.max_scaled_down(d, [old, new], new))
            available = old_n + new_avail
            down = min(down, available - (10 - 2)) if down > 0 else 0
            old_n -= max(0, down)
            new_avail = new_n  # pods become available
        assert old_n + new_n <= 13
        assert old_n + min(new_avail, new_n) >= 8


def test_proportional_scale_up_during_rollout() -> None:
    d = deploy(20)  # was 10 (max-replicas 13); now allowed 20 + 5 = 25
    old, new = rs("old", 8, created=1, max_replicas=13), rs("new", 5, created=2, max_replicas=13)
    ordered, sizes, op = du.proportional_sizes(d, [old, new])
    assert op == "up"
    assert [r.metadata.name for r in ordered] == ["old", "new"]
    assert sizes == {"old": 15, "new": 10}


def test_proportional_scale_down_during_rollout() -> None:
    d = deploy(5)  # allowed 5 + 2 = 7
    old, new = rs("old", 8, created=1, max_replicas=13), rs("new", 5, created=2, max_replicas=13)
    _, sizes, op = du.proportional_sizes(d, [old, new])
    assert op == "down"
    assert sizes == {"old": 4, "new": 3}
    assert sum(sizes.values()) == 7


def test_proportional_leftover_goes_to_largest() -> None:
    d = deploy(11, surge=0, unavailable=1)  # allowed 11
    a, b, c = (rs("a", 3, created=1, max_replicas=10), rs("b", 3, created=2, max_replicas=10),
               rs("c", 4, created=3, max_replicas=10))
    ordered, sizes, _ = du.proportional_sizes(d, [a, b, c])
    assert ordered[0].metadata.name == "c"
    assert sum(sizes.values()) == 11


def test_proportional_scale_to_zero() -> None:
    d = deploy(0)
    _, sizes, op = du.proportional_sizes(d, [rs("a", 3, max_replicas=5), rs("b", 2, max_replicas=5)])
    assert op == "down" and sizes == {"a": 0, "b": 0}


def test_round_half_away_from_zero() -> None:
    assert [du.round_half_away(x) for x in (2.5, 3.5, -2.5, 2.49, -0.4)] == [3, 4, -3, 2, 0]


def test_find_active_or_latest_and_saturation() -> None:
    new = rs("new", 0, created=2)
    old = rs("old", 3, created=1)
    assert du.find_active_or_latest(new, [old]) is old
    assert du.find_active_or_latest(rs("new", 2), [old]) is None
    assert du.find_active_or_latest(new, [rs("old", 0)]) is new
    d = deploy(3)
    full = rs("new", 3)
    assert not du.is_saturated(d, full)
    full.metadata.annotations[du.DESIRED_REPLICAS] = "3"
    assert du.is_saturated(d, full)


def template(image: str = "nginx:1.25") -> core.PodTemplateSpec:
    t = core.PodTemplateSpec()
    t.metadata.labels["app"] = "web"
    t.spec.containers.add(name="main", image=image)
    return t


def test_hash_is_stable_and_sensitive() -> None:
    a = du.compute_hash(template())
    assert a == du.compute_hash(template())
    assert a == "7b7b496687"  # pinned: a change would rename every ReplicaSet on upgrade
    assert a != du.compute_hash(template("nginx:1.26"))
    assert a != du.compute_hash(template(), 1)
    assert du.compute_hash(template(), 1) != du.compute_hash(template(), 2)
    labelled = template()
    labelled.metadata.labels[du.POD_TEMPLATE_HASH] = a
    assert du.compute_hash(labelled) == a
    assert set(a) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert du.fnv32a(b"") == 0x811C9DC5 and du.fnv32a(b"a") == 0xE40C292C


def test_equal_ignore_hash_and_find_new() -> None:
    t = template()
    labelled = template()
    labelled.metadata.labels[du.POD_TEMPLATE_HASH] = "x"
    assert du.equal_ignore_hash(t, labelled)
    assert not du.equal_ignore_hash(t, template("other"))
    d = deploy(3)
    d.spec.template.CopyFrom(t)
    r1, r2 = rs("a", 1, created=1), rs("b", 1, created=2)
    r1.spec.template.CopyFrom(template("other"))
    r2.spec.template.CopyFrom(labelled)
    assert du.find_new_rs(d, [r1, r2]) is r2


def test_revision_annotations() -> None:
    d = deploy(4)
    d.metadata.annotations["team"] = "a"
    d.metadata.annotations[du.LAST_APPLIED] = "{}"
    r = rs("r", 0)
    assert du.set_new_rs_annotations(d, r, 1, exists=False)
    assert r.metadata.annotations[du.REVISION] == "1"
    assert r.metadata.annotations["team"] == "a" and du.LAST_APPLIED not in r.metadata.annotations
    assert r.metadata.annotations[du.DESIRED_REPLICAS] == "4" and r.metadata.annotations[du.MAX_REPLICAS] == "5"
    assert not du.set_new_rs_annotations(d, r, 1, exists=True)
    assert du.set_new_rs_annotations(d, r, 3, exists=True)  # rollback: reused with a new revision
    assert r.metadata.annotations[du.REVISION] == "3"
    assert r.metadata.annotations[du.REVISION_HISTORY] == "1"
    assert du.max_revision([r, rs("x", 0)]) == 3


def test_conditions_and_status() -> None:
    d = deploy(4)
    d.metadata.generation = 2
    st = du.calculate_status([rs("a", 4, available=3)], rs("a", 4, available=3), d)
    assert (st.replicas, st.updated_replicas, st.available_replicas, st.unavailable_replicas) == (4, 4, 3, 1)
    assert st.observed_generation == 2
    avail = du.get_condition(st, du.AVAILABLE)
    assert avail is not None and avail.status == "True" and avail.reason == du.MIN_REPLICAS_AVAILABLE
    st2 = du.calculate_status([rs("a", 4, available=1)], None, d)
    avail = du.get_condition(st2, du.AVAILABLE)
    assert avail is not None and avail.status == "False"
    # Same status and reason: no change at all (timestamps kept)
    c = du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, "x")
    du.set_condition(st, c)
    before = st.SerializeToString(deterministic=True)
    later = du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, "y")
    later.last_update_time.seconds += 100
    du.set_condition(st, later)
    assert st.SerializeToString(deterministic=True) == before
    d.status.CopyFrom(st)
    d.status.updated_replicas = 4
    d.status.replicas = 4
    d.status.available_replicas = 4
    assert du.deployment_complete(d, d.status)
    assert not du.deployment_progressing(d, d.status)


def test_timed_out() -> None:
    d = deploy(2)
    d.spec.progress_deadline_seconds = 10
    st = apps.DeploymentStatus()
    c = du.new_condition(du.PROGRESSING, "True", du.RS_UPDATED, "x")
    c.last_update_time.seconds = 1000
    st.conditions.append(c)
    assert not du.deployment_timed_out(d, st, 1005)
    assert du.deployment_timed_out(d, st, 1011)
    st.conditions[0].reason = du.NEW_RS_AVAILABLE
    assert not du.deployment_timed_out(d, st, 5000)
