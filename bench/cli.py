"""The command line and the first figures every bench shares.

`arguments` is a bench's parser: the first line of its docstring as the description and `--quick` (README: a
quick run finishes within 60 s unless its help says otherwise); the bench adds its own options. `figures` opens
the one JSON object of a run (bench/report.py's `emit`): the bench's name, whether it was quick, the cores.
"""

from __future__ import annotations

import argparse
import os
from typing import Any


def arguments(doc: str | None, quick: str | None = "finish within 60 s", *, whole_doc: bool = False,
              prog: str | None = None) -> argparse.ArgumentParser:
    """The parser of a bench documented by `doc`, with --quick helped by `quick` (None: a helper process of a
    bench, no --quick). `whole_doc`: the whole docstring, as written, is the description."""
    text = doc or ""
    if whole_doc:
        ap = argparse.ArgumentParser(prog=prog, description=text, formatter_class=argparse.RawDescriptionHelpFormatter)
    else:
        ap = argparse.ArgumentParser(prog=prog, description=text.strip().splitlines()[0] if text.strip() else None)
    if quick is not None:
        ap.add_argument("--quick", action="store_true", help=quick)
    return ap


def figures(bench: str, args: argparse.Namespace, **more: Any) -> dict[str, Any]:
    """The first figures of a run of `bench` parsed by `arguments`, then `more`."""
    return {"bench": bench, "quick": bool(args.quick), "cores": os.cpu_count(), **more}
