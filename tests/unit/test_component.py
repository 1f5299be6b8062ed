"""How every component process runs (pybernetes.component.serve): run(cfg, stop=...) to its end, and what the
process holds from its start frozen out of the cycle collector's full collections, which run rarely."""

from __future__ import annotations

import asyncio
import gc

from pybernetes import component


def test_serve_runs_the_component_with_what_the_process_started_with_frozen() -> None:
    seen: dict[str, object] = {}

    async def run(cfg: str, stop: asyncio.Event) -> None:
        seen["cfg"], seen["stopped"] = cfg, stop.is_set()
        seen["frozen"] = gc.get_freeze_count()
        seen["thresholds"] = gc.get_threshold()
        # what existed before serve (this module's function, here) is no longer walked by a collection
        seen["walked"] = any(o is test_serve_runs_the_component_with_what_the_process_started_with_frozen
                             for o in gc.get_objects())

    thresholds = gc.get_threshold()
    try:
        component.serve(run, "config")
    finally:
        gc.unfreeze()  # the rest of the test session collects as usual
        gc.set_threshold(*thresholds)
    assert seen["cfg"] == "config" and seen["stopped"] is False
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 1000
    assert seen["walked"] is False
    # full collections at most every 100 young ones (Python's default: 10)
    assert seen["thresholds"] == (thresholds[0], thresholds[1], component.FULL_COLLECTION_EVERY) != thresholds
