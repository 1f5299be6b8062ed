"""pbctl plugins, as kubectl's: `pbctl NAME args...` runs an executable `pbctl-NAME args...` when NAME
is not a built-in verb. The lab (`pbctl lab up`) is one: it sits above every component, so it lives
outside the shared library and joins pbctl at the process boundary.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path


def find(argv: Sequence[str], builtins: set[str]) -> str | None:
    """The plugin executable for argv[0], if argv names one and it exists."""
    if not argv or argv[0].startswith("-") or argv[0] in builtins:
        return None
    name = f"pbctl-{argv[0]}"
    # Beside pbctl itself first (a venv's bin), then PATH.
    for d in (Path(sys.argv[0]).resolve().parent, Path(sys.executable).parent):
        cand = d / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return shutil.which(name)
