"""Label/field selectors and quantities, as Kubernetes parses and matches them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pybernetes.api import quantity, selectors
from pybernetes.api.meta.v1 import meta_pb2 as meta
from pybernetes.errors import BadRequest


@pytest.mark.parametrize(("sel", "labels", "match"), [
    ("", {}, True),
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "db"}, False),
    ("app!=web", {}, True),
    ("app!=web", {"app": "web"}, False),
    ("env in (a, b)", {"env": "b"}, True),
    ("env in (a,b)", {}, False),
    ("env notin (a,b)", {}, True),
    ("env notin (a,b)", {"env": "a"}, False),
    ("gpu", {"gpu": ""}, True),
    ("!gpu", {"gpu": "x"}, False),
    ("app=web,tier in (fe),!legacy", {"app": "web", "tier": "fe"}, True),
    ("example.com/role=x", {"example.com/role": "x"}, True),
])
def test_label_selector(sel: str, labels: dict[str, str], match: bool) -> None:
    assert selectors.parse_label_selector(sel).matches(labels) is match


@pytest.mark.parametrize("bad", ["app=we b", "=x", "a in (b", "Bad Key=x"])
def test_label_selector_errors(bad: str) -> None:
    with pytest.raises(BadRequest):
        selectors.parse_label_selector(bad)


def test_label_selector_from_message() -> None:
    ls = meta.LabelSelector(match_labels={"app": "web"})
    ls.match_expressions.add(key="tier", operator="In", values=["fe", "be"])
    ls.match_expressions.add(key="old", operator="DoesNotExist")
    s = selectors.from_message(ls)
    assert s.matches({"app": "web", "tier": "fe"})
    assert not s.matches({"app": "web", "tier": "fe", "old": "1"})
    assert selectors.from_message(meta.LabelSelector()).matches({"anything": "x"})
    assert not selectors.from_message(None).matches({})
    with pytest.raises(BadRequest):
        selectors.from_message(meta.LabelSelector(match_expressions=[meta.LabelSelectorRequirement(
            key="a", operator="Near")]))


def test_field_selector() -> None:
    fs = selectors.parse_field_selector("spec.nodeName=n1,status.phase!=Failed")
    assert fs.matches({"spec.nodeName": "n1", "status.phase": "Running"})
    assert not fs.matches({"spec.nodeName": "n1", "status.phase": "Failed"})
    assert fs.value_of("spec.nodeName") == "n1"
    with pytest.raises(BadRequest, match="field label not supported"):
        selectors.parse_field_selector("spec.x=1", frozenset({"spec.nodeName"}))


@pytest.mark.parametrize(("text", "value"), [
    ("100m", Decimal("0.1")), ("1", Decimal(1)), ("1.5", Decimal("1.5")), ("64Mi", Decimal(64 * 2**20)),
    ("2G", Decimal(2 * 10**9)), ("1e3", Decimal(1000)), ("1Ki", Decimal(1024)), (".5", Decimal("0.5")),
])
def test_quantity_parse(text: str, value: Decimal) -> None:
    assert quantity.parse(text) == value


def test_quantity_helpers() -> None:
    assert quantity.milli_value("100m") == 100 and quantity.milli_value("2") == 2000
    assert quantity.milli_value("1.0001") == 1001  # rounds up
    assert quantity.value("64Mi") == 67108864
    assert quantity.format_cpu_milli(1500) == "1500m" and quantity.format_cpu_milli(2000) == "2"
    assert quantity.format_bytes(128 * 2**20) == "128Mi"
    for bad in ("lots", "1.2.3", "10XB", ""):
        assert not quantity.is_valid(bad)
