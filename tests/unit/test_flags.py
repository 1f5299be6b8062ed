"""Flag values as the components and pbctl take them (pybernetes.flags)."""

from __future__ import annotations

import argparse

import pytest

from pybernetes import flags


@pytest.mark.parametrize(("text", "seconds"), [
    ("40s", 40.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("2.5", 2.5), (" 5m ", 300.0), (3, 3.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert flags.duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "1m30", "s", "-", "1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        flags.duration(text)


def test_booleans() -> None:
    assert all(flags.boolean(t) for t in ("true", "True", "1", "t", "yes", "on"))
    assert not any(flags.boolean(t) for t in ("false", "FALSE", "0", "f", "no", "off"))
    with pytest.raises(argparse.ArgumentTypeError, match="invalid boolean 'maybe'"):
        flags.boolean("maybe")


def test_key_values() -> None:
    assert flags.key_values("a=1, b=2,,c") == {"a": "1", "b": "2", "c": ""}
    with pytest.raises(argparse.ArgumentTypeError, match="empty key"):
        flags.key_values("=1")


def test_argparse_reports_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser(prog="pb-x")
    p.add_argument("--sync-period", type=flags.duration, default="30s")
    assert p.parse_args([]).sync_period == 30.0
    with pytest.raises(SystemExit) as e:
        p.parse_args(["--sync-period", "5x"])
    assert e.value.code == 2
    assert "argument --sync-period: invalid duration '5x'" in capsys.readouterr().err


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (40.0, "40s"), (90, "1m30s"), (300.0, "5m"), (3605, "1h5s"), (7200, "2h"), (2.5, "2.5s"),
    (0.1, "0.1s"), (-1.0, "-1.0"), (1e-7, "1e-07"),
])
def test_format_duration_is_read_back(seconds: float, text: str) -> None:
    assert flags.format_duration(seconds) == text
    assert flags.duration(text) == seconds


def test_string_lists() -> None:
    assert flags.string_list("a, b,,c ") == ["a", "b", "c"]
    assert flags.string_list("") == []
