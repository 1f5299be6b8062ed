"""Manifests from -f files, directories or stdin, and the per-object loop of apply and create.

Callers: the apply and create verbs, and delete, label, annotate and scale with -f.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from google.protobuf.message import Message

from pbctl.common import CliError, Ctx, err, format_api_error, is_connection_error, out
from pybernetes import errors
from pybernetes.api import codec, kinds
from pybernetes.api.objects import meta_of

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def manifest_files(paths: list[str], recursive: bool) -> list[str]:
    """Expand -f arguments: files as given, directories to their .yaml/.yml/.json files (sorted)."""
    files: list[str] = []
    for p in paths:
        if p == "-":
            files.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found = sorted(str(f) for f in path.glob(pattern) if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
            files.extend(found)
        elif path.exists():
            files.append(p)
        else:
            raise CliError(f'the path "{p}" does not exist')
    return files


def read_manifests(paths: list[str], recursive: bool = False) -> list[tuple[str, Message]]:
    """(source, object) for every object; raises ManifestError (names file, document, field path)."""
    if not paths:
        raise CliError("must specify one of -f and -k")
    objs: list[tuple[str, Message]] = []
    for f in manifest_files(paths, recursive):
        text = sys.stdin.read() if f == "-" else Path(f).read_text()
        objs.extend((f, o) for o in codec.load_manifests(text, f))
    if not objs:
        raise CliError("no objects passed to apply")
    return objs


def set_namespace(ctx: Ctx, obj: Message) -> None:
    """Default the object's namespace; a conflicting -n is an error, as in kubectl."""
    info = kinds.for_message(obj)
    md = meta_of(obj)
    if not info.namespaced:
        md.namespace = ""
        return
    if md.namespace and ctx.explicit_namespace and md.namespace != ctx.namespace:
        raise CliError(f'the namespace from the provided object "{md.namespace}" does not match the namespace '
                       f'"{ctx.namespace}". You must pass \'--namespace={md.namespace}\' to perform this operation.')
    if not md.namespace:
        md.namespace = ctx.namespace


# One object's change: (ctx, object, dry_run) -> the line to print (`configmap/a created`).
ObjectAction = Callable[[Ctx, Message, bool], Awaitable[str]]


async def each_object(ctx: Ctx, args: argparse.Namespace, what: str, action: ObjectAction) -> int:
    """Run `action` on every manifest object, reporting each failure as kubectl does (`error when <what> ...`)
    and going on with the others; a lost connection ends the command."""
    objs = read_manifests(list(args.filename or []), args.recursive)
    dry_run = getattr(args, "dry_run", "none") in ("server", "client")
    failed = 0
    for source, obj in objs:
        try:
            line = await action(ctx, obj, dry_run)
        except errors.Unavailable as e:
            if is_connection_error(e):
                raise
            failed += 1
            err(f'Error from server ({e.reason}): error when {what} "{source}": {e}')
            continue
        except errors.Invalid as e:
            failed += 1
            err(f'error when {what} "{source}": {format_api_error(e)}')
            continue
        except errors.ApiError as e:
            failed += 1
            err(f'Error from server ({e.reason}): error when {what} "{source}": {e}')
            continue
        out(line.split(" ")[0] if args.output == "name" else line)
    return 1 if failed else 0
