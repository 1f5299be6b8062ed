"""bench.soak's figures: growth measured from the end of the warm-up (the cold-start figure beside it), and the
verdict: RSS over the bound, fds or tasks above their cold start, watchers not back at it, a component gone or a
failed request each fail the soak with its reason."""

from __future__ import annotations

import os
import socket

from bench import soak
from bench.soak import Sample, component_row, failures, growth_pct, leaks, report_line, settle


def s(t: float, rss_mib: float, fds: int = 10, tasks: int | None = None, watchers: int | None = None) -> Sample:
    kib = int(rss_mib * 1024)
    return Sample(t, kib, fds, tasks, watchers, anon_kib=kib // 2, file_kib=kib - kib // 2)


def test_growth_pct() -> None:
    assert growth_pct(1000, 1100) == 10.0
    assert growth_pct(1000, 950) == -5.0
    assert growth_pct(0, 10) == 1000.0  # no division by zero


def test_growth_is_measured_after_the_warm_up_and_from_the_cold_start() -> None:
    start = s(0, 25.0, tasks=80, watchers=3)
    pts = [s(15, 30.0), s(100, 32.0), s(300, 34.0), s(600, 35.2)]
    row = component_row(start, pts, s(610, 35.0, tasks=80, watchers=3), settled_from=100)
    assert (row["rss_mib_first"], row["rss_mib_last"], row["rss_growth_pct"]) == (32.0, 35.2, 10.0)
    assert row["flagged"] is False  # at most 10 %
    assert (row["rss_mib_start"], row["rss_growth_from_start_pct"]) == (25.0, 40.8)  # shown, not the bound
    assert (row["anon_mib_start"], row["anon_mib_last"]) == (12.5, 17.6)
    assert (row["tasks_baseline"], row["tasks_after"], row["watchers_after"]) == (80, 80, 3)
    assert "+40.8 % from the start" not in report_line("etcd", row)
    assert "+10.0 % after the warm-up" in report_line("etcd", row)
    assert "from the start +40.8 %" in report_line("etcd", row)
    over = component_row(start, [*pts, s(615, 35.3)], None, settled_from=100)
    assert over["flagged"] is True and "fds_after" not in over


def test_a_run_shorter_than_its_warm_up_uses_every_sample() -> None:
    row = component_row(None, [s(5, 30.0), s(10, 31.0)], None, settled_from=100)
    assert (row["rss_mib_first"], row["rss_mib_last"]) == (30.0, 31.0) and "rss_mib_start" not in row


def test_leaks() -> None:
    base = s(0, 30, fds=17, tasks=80, watchers=3)
    assert leaks(base, s(1, 40, fds=17, tasks=79, watchers=3)) == []  # fewer tasks than at the start: none leaked
    assert leaks(base, s(1, 30, fds=18, tasks=81, watchers=2)) == [
        "fds 17 -> 18", "asyncio tasks 80 -> 81", "registered watchers 3 -> 2"]
    assert leaks(s(0, 30), s(1, 30, tasks=5)) == []  # no gauge at the start: nothing to compare


def test_failures_name_every_reason() -> None:
    ok = component_row(s(0, 30, 17, 80, 3), [s(100, 30), s(600, 31)], s(610, 31, 17, 80, 3), settled_from=100)
    assert failures({"apiserver": ok}, 0, ["apiserver"]) == []
    grown = component_row(s(0, 30, 16), [s(100, 30), s(600, 34)], s(610, 34, 16), settled_from=100)
    leaky = component_row(s(0, 30, 17, 80, 3), [s(100, 30)], s(610, 30, 19, 95, 5), settled_from=100)
    got = failures({"apiserver": leaky, "etcd": grown}, 2, ["apiserver", "etcd", "kubelet/node-1"])
    assert got == ["apiserver: fds 17 -> 19 after the load", "apiserver: asyncio tasks 80 -> 95 after the load",
                   "apiserver: registered watchers 3 -> 5 after the load",
                   "etcd: RSS 30.0 -> 34.0 MiB after the warm-up (+13.3 %, bound 10 %)",
                   "kubelet/node-1: not running at the end", "2 requests failed"]


def test_settle_keeps_each_components_first_sample_back_at_its_start() -> None:
    start = {"etcd": s(0, 30, fds=17), "proxy": s(0, 70, fds=15, tasks=16), "kubelet": s(0, 70, fds=16)}
    first = settle(start, {}, {"etcd": s(5, 30, fds=18), "proxy": s(5, 70, fds=15, tasks=16),
                               "kubelet": s(5, 70, fds=16)})
    # a scrape in flight in the proxy at the second instant: its first, clean sample stays
    second = settle(start, first, {"etcd": s(10, 30, fds=18), "proxy": s(10, 70, fds=15, tasks=17)})
    assert second["proxy"].tasks == 16 and second["proxy"].t == 5
    assert leaks(start["etcd"], second["etcd"]) == ["fds 17 -> 18"] and second["etcd"].t == 10  # still leaking
    assert "kubelet" not in second  # gone: failures() reports it


def test_open_files_names_a_tcp_socket_by_its_addresses() -> None:
    """The leak report says what an extra descriptor is: a listening socket shows as its local address."""
    before = soak.open_files(os.getpid())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        extra = soak.open_files(os.getpid()) - before
    assert extra == {f"tcp 127.0.0.1:{port} -> 0.0.0.0:0": 1}


def test_targets_prometheus_has_not_scraped_yet() -> None:
    # /api/v1/targets?state=active as Prometheus 2.42 answers it: a target never scraped has the zero time.
    answer = {"status": "success", "data": {"activeTargets": [
        {"labels": {"job": "etcd", "instance": "127.0.0.1:2381"}, "lastScrape": "0001-01-01T00:00:00Z"},
        {"labels": {"job": "apiserver", "instance": "127.0.0.1:6443"},
         "lastScrape": "2026-12-07T12:10:01.123Z", "health": "up"},
        {"labels": {"job": "scheduler", "instance": "127.0.0.1:10259"}, "lastScrape": "2026-12-07T12:10:02Z",
         "health": "down"}]}}
    assert soak.unscraped_targets(answer) == ["etcd/127.0.0.1:2381"]
    assert soak.unscraped_targets({"data": {"activeTargets": []}}) == ["(no targets loaded yet)"]
