"""free_port never hands out a port the kernel may pick for an outgoing connection, nor one in use; no
component writes a named port as a literal."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest

from pybernetes import ports


def test_ports_are_outside_the_ephemeral_range_and_unique() -> None:
    lo, hi = ports._ephemeral_range()
    got = [ports.free_port() for _ in range(50)]
    assert len(set(got)) == len(got)
    for p in got:
        assert not lo <= p <= hi
        assert ports.PORT_RANGE[0] <= p <= ports.PORT_RANGE[1]


def test_a_port_in_use_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        taken = int(blocker.getsockname()[1])
        monkeypatch.setattr(ports, "_ephemeral_range", lambda: (1, 2))
        monkeypatch.setattr(ports, "PORT_RANGE", (taken, taken + 1))
        monkeypatch.setattr(ports, "_handed_out", set())
        if not ports._bindable(taken + 1):
            pytest.skip("neighbouring port busy")
        assert ports.free_port() == taken + 1
        with pytest.raises(RuntimeError, match="no free port"):
            ports.free_port()  # the only other one is now handed out


def test_no_component_writes_a_port_as_a_literal() -> None:
    """Component code takes its ports from pybernetes.ports (generated protobuf code excepted)."""
    named = {v for k, v in vars(ports).items() if k.isupper() and isinstance(v, int) and v > 100}
    pattern = re.compile(r"(?<![\w.])(" + "|".join(str(p) for p in sorted(named)) + r")(?![\w.])")
    root = Path(__file__).resolve().parents[2]
    found = [f"{path.relative_to(root)}:{n}: {line.strip()}"
             for top in ("services", "node_agent", "netproxy") for path in sorted((root / top).rglob("*.py"))
             if "_pb2" not in path.name
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, "\n".join(found)
