"""Structured logging for every component: one line per event (time, level, component, logger, message),
messages written as key=value pairs."""

from __future__ import annotations

import logging
import sys


def setup(component: str, *, verbose: bool = False) -> None:
    fmt = f"%(asctime)s %(levelname)s {component} %(name)s %(message)s"
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=fmt, stream=sys.stderr,
                        force=True)
    logging.getLogger("asyncio").setLevel(logging.WARNING)
