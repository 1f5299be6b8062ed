"""pbctl: argument parsing, dispatch and kubectl-style error reporting.

`async def run(argv) -> int` is the whole command (tests await it); `main()` is the console script.
The verbs come from `pbctl.verbs` (one module each, declaring its name, help, arguments and handler);
this module knows none of them. Global flags (--config, -n, -A, --context, --server, --token, --as, --as-group, -v) are
accepted before or after the verb. A first argument that is no verb runs its `pbctl-NAME` plugin (pbctl.plugins).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import sys
from collections.abc import Sequence

from pbctl import plugins, verbs
from pbctl.common import CliError, Ctx, err, format_api_error
from pbctl.verb import GLOBAL_DEFAULTS, Parser, global_flags
from pybernetes import errors
from pybernetes.client import config as client_config

# What a shell reports for a process killed by SIGPIPE (128 + 13), as kubectl is when its reader goes away.
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    """pbctl's parser: the global flags, then one subcommand per module in pbctl.verbs."""
    parser = Parser(prog="pbctl", parents=[global_flags()],
                    description="pbctl controls the pybernetes cluster manager.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for verb in verbs.all_verbs():
        verb.arguments(sub.add_parser(verb.name, help=verb.help, parents=[global_flags()],
                                      aliases=list(verb.aliases)))
    return parser


def _split_dashes(argv: list[str]) -> tuple[list[str], list[str] | None]:
    """Cut off what follows `--` after a verb that passes it on (`exec POD -- CMD...`) before argparse sees it."""
    for verb in verbs.all_verbs():
        if verb.after_dashes and verb.name in argv and "--" in argv[argv.index(verb.name):]:
            cut = argv.index("--", argv.index(verb.name))
            return argv[:cut], argv[cut + 1:]
    return argv, None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv, tail = _split_dashes(list(argv))
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Positionals may follow flags (`get pods -n x web`): argparse leaves those over; append them in order.
    target = next((k for k in ("resources", "args") if isinstance(getattr(args, k, None), list)), None)
    flags = [x for x in extra if x.startswith("-") and x != "-"]
    if flags or (extra and target is None):
        parser.error(f"unrecognized arguments: {' '.join(flags or extra)}")
    if target is not None:
        setattr(args, target, [*getattr(args, target), *extra])
    for k, v in GLOBAL_DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    if args.command is None:
        raise CliError("a command is required; see 'pbctl -h'")
    dest = verbs.by_name()[args.command].after_dashes
    if dest:
        setattr(args, dest, [*getattr(args, dest), *(tail or [])])
    return args


def make_ctx(args: argparse.Namespace) -> Ctx:
    try:
        cfg: client_config.ClientConfig | None = client_config.load(
            args.config, context=args.context, server=args.server, token=args.token)
        cfg_error = ""
    except errors.ConfigError as e:
        cfg, cfg_error = None, str(e)
    namespace = args.namespace or (cfg.namespace if cfg is not None else "default")
    return Ctx(cfg, namespace=namespace, explicit_namespace=bool(args.namespace),
               all_namespaces=bool(args.all_namespaces), verbosity=int(args.verbosity or 0), config_error=cfg_error,
               as_user=args.as_user or "", as_groups=tuple(args.as_groups or ()))


async def run(argv: Sequence[str]) -> int:
    """Run one pbctl command; returns the exit code (errors are printed to stderr, kubectl-style)."""
    ctx: Ctx | None = None
    plugin = plugins.find(list(argv))
    if plugin is not None:
        proc = await asyncio.create_subprocess_exec(plugin, *argv[1:])
        return await proc.wait()
    try:
        args = parse_args(argv)
        if args.verbosity:
            logging.basicConfig(level=logging.DEBUG if args.verbosity >= 6 else logging.INFO,
                                format="%(levelname)s %(name)s: %(message)s")
        ctx = make_ctx(args)
        return await verbs.by_name()[args.command].run(ctx, args)
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else 0
    except CliError as e:
        err(f"error: {e}")
    except errors.ManifestError as e:
        err(f"error: {e}")
    except errors.ConfigError as e:
        err(f"error: {e}")
    except errors.ApiError as e:
        err(format_api_error(e, ctx.server if ctx is not None else ""))
    finally:
        if ctx is not None:
            await ctx.close()
    return 1


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush at exit cannot fail on the closed pipe too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # stdout is not a file descriptor (replaced by a harness): nothing will flush to the pipe


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = asyncio.run(run(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader went away (`pbctl get pods -o name | head -1`): stop quietly, as kubectl does.
        _discard_stdout()
        code = EXIT_BROKEN_PIPE
    sys.exit(code)


if __name__ == "__main__":
    main()
