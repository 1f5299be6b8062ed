"""The pbctl verbs, one module each: a module here that declares `VERB = Verb(...)` is a pbctl subcommand, named
as its module with dashes for underscores (pbctl.plugins reads the names from the modules without importing them).

Adding a verb is adding a module; `all_verbs()` walks this package, so nothing else lists them.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from pbctl.verb import Verb


@cache
def all_verbs() -> tuple[Verb, ...]:
    """Every verb declared in this package, in `pbctl --help` order."""
    found: list[Verb] = []
    for m in pkgutil.iter_modules(__path__):
        verb = getattr(importlib.import_module(f"{__name__}.{m.name}"), "VERB", None)
        if isinstance(verb, Verb):
            found.append(verb)
    return tuple(sorted(found, key=lambda v: (v.rank, v.name)))


def by_name() -> dict[str, Verb]:
    """Each verb under its name and its aliases."""
    return {n: v for v in all_verbs() for n in (v.name, *v.aliases)}
