"""pbctl's JSONPath templates against what kubectl prints for the same data."""

from __future__ import annotations

import pytest

from pbctl.common import CliError
from pbctl.jsonpath import render

EP = {"kind": "Endpoints", "metadata": {"name": "hello", "labels": {"app": "web"}},
      "subsets": [{"addresses": [{"ip": "10.0.0.1", "nodeName": "n1"}, {"ip": "10.0.0.2", "nodeName": "n2"}],
                   "ports": [{"name": "http", "port": 8080}]},
                  {"addresses": [{"ip": "10.0.0.3", "nodeName": "n1"}]}]}
LIST = {"kind": "List", "items": [{"metadata": {"name": "a"}, "status": {"phase": "Running"}, "spec": {"n": 1}},
                                  {"metadata": {"name": "b"}, "status": {"phase": "Pending"}, "spec": {"n": 3}}]}


@pytest.mark.parametrize(("template", "want"), [
    ("{.metadata.name}", "hello"),
    (".metadata.name", "hello"),
    ("{.subsets[*].addresses[*].ip}", "10.0.0.1 10.0.0.2 10.0.0.3"),
    ("{.subsets[0].addresses[-1].ip}", "10.0.0.2"),
    ("{.subsets[0].addresses[0:1].ip}", "10.0.0.1"),
    ("{..ip}", "10.0.0.1 10.0.0.2 10.0.0.3"),
    ("{.subsets[*].addresses[?(@.nodeName==\"n1\")].ip}", "10.0.0.1 10.0.0.3"),
    ("{.metadata.labels}", '{"app": "web"}'),
    ("{.metadata.labels['app']}", "web"),
    ("{.metadata.missing}", ""),
    ("name={.metadata.name} port={.subsets[0].ports[0].port}", "name=hello port=8080"),
])
def test_expressions(template: str, want: str) -> None:
    assert render(EP, template) == want


def test_range_and_literals() -> None:
    t = '{range .items[*]}{.metadata.name}{"\\t"}{.status.phase}{"\\n"}{end}'
    assert render(LIST, t) == "a\tRunning\nb\tPending\n"
    assert render(LIST, "{.items[?(@.spec.n>2)].metadata.name}") == "b"
    assert render(LIST, "{.items[?(@.status.phase!='Running')].metadata.name}") == "b"


def test_errors_name_the_template() -> None:
    with pytest.raises(CliError, match="unclosed"):
        render(EP, "{.metadata.name")
    with pytest.raises(CliError, match="without"):
        render(LIST, "{range .items[*]}{.metadata.name}")
