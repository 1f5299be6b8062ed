"""pbctl plugins, as kubectl's: `pbctl NAME args...` runs an executable `pbctl-NAME args...` when NAME
is not a built-in verb. The lab (`pbctl lab up`) is one: it sits above every component, so it lives
outside the shared library and joins pbctl at the process boundary.

This module imports nothing of pbctl: the console script (pbctl.entry) asks it first, so that a plugin starts
without pbctl's verbs and client library loaded.
"""

from __future__ import annotations

import os
import pkgutil
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path


def builtin_names() -> set[str]:
    """The verbs' names, read from pbctl.verbs' module names without importing them: a verb is named after its
    module, dashes for underscores (tests/unit/test_cli_verbs.py holds every verb to it)."""
    return {m.name.replace("_", "-") for m in pkgutil.iter_modules([str(Path(__file__).parent / "verbs")])}


def find(argv: Sequence[str]) -> str | None:
    """The plugin executable for argv[0], if argv names one that is no verb and it exists."""
    if not argv or argv[0].startswith("-") or argv[0] in builtin_names():
        return None
    name = f"pbctl-{argv[0]}"
    # Beside pbctl itself first (a venv's bin), then PATH.
    for d in (Path(sys.argv[0]).resolve().parent, Path(sys.executable).parent):
        cand = d / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which(name)


def exec_plugin(argv: Sequence[str]) -> None:
    """Become argv[0]'s plugin (os.execv, as kubectl execs its plugins) if argv names one; else return."""
    plugin = find(argv)
    if plugin is not None:
        os.execv(plugin, [plugin, *argv[1:]])
