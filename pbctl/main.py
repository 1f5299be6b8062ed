"""pbctl: argument parsing, dispatch and kubectl-style error reporting.

`async def run(argv) -> int` is the whole command (tests await it); `main()` is the console script.
Global flags (--config, -n, -A, --context, --server, --token, -v) are accepted before or after the verb.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from pbctl import plugins
from pbctl.common import CliError, Ctx, err, format_api_error
from pybernetes import errors, flags
from pybernetes.client import config as client_config

SUPPRESS = argparse.SUPPRESS
GLOBAL_DEFAULTS = {"config": None, "namespace": None, "all_namespaces": False, "context": None, "server": None,
                   "token": None, "verbosity": 0}


class Parser(argparse.ArgumentParser):
    """argparse that reports errors like kubectl (`error: ...`, exit 1) instead of exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message}\nSee '{self.prog} -h' for help and examples")


def _globals() -> Parser:
    g = Parser(add_help=False, argument_default=SUPPRESS)
    g.add_argument("--config", "--kubeconfig", dest="config", metavar="PATH",
                   help="client config file (default $PBCONFIG or ~/.pybernetes/config)")
    g.add_argument("-n", "--namespace", dest="namespace", help="namespace scope for this request")
    g.add_argument("-A", "--all-namespaces", dest="all_namespaces", action="store_true",
                   help="list across all namespaces")
    g.add_argument("--context", dest="context", help="config context to use")
    g.add_argument("-s", "--server", dest="server", help="address of the apiserver (host:port)")
    g.add_argument("--token", dest="token", help="bearer token")
    g.add_argument("-v", "--v", dest="verbosity", type=int, metavar="LEVEL", help="log level verbosity")
    return g


def _files(p: argparse.ArgumentParser, required: bool = False) -> None:
    p.add_argument("-f", "--filename", action="append", default=[], required=required,
                   help="file, directory or '-' (stdin) with manifests")
    p.add_argument("-R", "--recursive", action="store_true", help="process directories recursively")


def _dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", nargs="?", const="server", default="none", choices=("none", "client", "server"))


def build_parser() -> argparse.ArgumentParser:
    common = _globals()
    parser = Parser(prog="pbctl", parents=[common], description="pbctl controls the pybernetes cluster manager.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    def cmd(name: str, help_: str, aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = sub.add_parser(name, help=help_, parents=[common], aliases=list(aliases))
        return p

    p = cmd("apply", "Apply a configuration to a resource by file name or stdin")
    _files(p)
    p.add_argument("-o", "--output", choices=("name",), default="")
    _dry_run(p)

    p = cmd("create", "Create a resource from a file or from stdin")
    _files(p)
    p.add_argument("-o", "--output", choices=("name",), default="")
    _dry_run(p)

    p = cmd("get", "Display one or many resources")
    p.add_argument("resources", nargs="*", metavar="TYPE[,TYPE] [NAME...] | TYPE/NAME")
    p.add_argument("-o", "--output", default="", help="wide|yaml|json|name|jsonpath=EXPR")
    p.add_argument("-w", "--watch", action="store_true", help="after listing, watch for changes")
    p.add_argument("--watch-only", action="store_true", help="watch for changes without listing first")
    p.add_argument("--output-watch-events", action="store_true", help="print the event type in watch mode")
    p.add_argument("-l", "--selector", default="", help="label selector")
    p.add_argument("--field-selector", default="", help="field selector")
    p.add_argument("--show-labels", action="store_true")
    p.add_argument("--no-headers", action="store_true")
    p.add_argument("--sort-by", default="", help="JSONPath, e.g. .metadata.name")
    p.add_argument("--request-timeout", default="", help="stop watching after this long (e.g. 30s)")

    p = cmd("describe", "Show details of a specific resource or group of resources")
    p.add_argument("resources", nargs="*")
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--show-events", type=flags.boolean, nargs="?", const=True, default=True)

    p = cmd("delete", "Delete resources by file names, stdin, resources and names, or by resources and label "
                      "selector")
    p.add_argument("resources", nargs="*")
    _files(p)
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--field-selector", default="")
    p.add_argument("--all", action="store_true", help="delete all resources of the type in the namespace")
    p.add_argument("--grace-period", type=int, default=-1)
    p.add_argument("--now", action="store_true", help="grace period 1 (immediate shutdown)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--cascade", nargs="?", const="background", default="background",
                   help="background|foreground|orphan")
    p.add_argument("--wait", type=flags.boolean, nargs="?", const=True, default=True)
    p.add_argument("--timeout", default="", help="how long to wait for deletion (0: forever)")
    p.add_argument("--ignore-not-found", action="store_true")
    p.add_argument("-o", "--output", choices=("name",), default="")
    _dry_run(p)

    p = cmd("edit", "Edit a resource on the server")
    p.add_argument("resources", nargs="*")
    p.add_argument("-o", "--output", choices=("name",), default="")

    for verb, what in (("label", "labels"), ("annotate", "annotations")):
        p = cmd(verb, f"Update the {what} on a resource")
        p.add_argument("args", nargs="*", metavar="TYPE NAME KEY=VAL|KEY-")
        _files(p)
        p.add_argument("--overwrite", action="store_true", help="allow changing existing values")
        p.add_argument("-l", "--selector", default="")
        p.add_argument("--all", action="store_true")
        p.add_argument("--list", action="store_true")
        p.add_argument("--resource-version", default="")
        p.add_argument("-o", "--output", choices=("name",), default="")
        _dry_run(p)

    p = cmd("scale", "Set a new size for a deployment, replica set, or replication controller")
    p.add_argument("resources", nargs="*")
    _files(p)
    p.add_argument("--replicas", type=int, default=None)
    p.add_argument("--current-replicas", type=int, default=None)
    p.add_argument("-l", "--selector", default="")
    p.add_argument("--all", action="store_true")
    p.add_argument("-o", "--output", choices=("name",), default="")
    _dry_run(p)

    p = cmd("rollout", "Manage the rollout of a resource")
    rsub = p.add_subparsers(dest="rollout_cmd", metavar="SUBCOMMAND", parser_class=Parser)
    rsub.required = True
    for name, help_ in (("status", "Show the status of the rollout"), ("history", "View rollout history"),
                        ("undo", "Undo a previous rollout"), ("restart", "Restart a resource"),
                        ("pause", "Mark the provided resource as paused"), ("resume", "Resume a paused resource")):
        rp = rsub.add_parser(name, help=help_, parents=[common])
        rp.add_argument("resources", nargs="*")
        _dry_run(rp)
        if name == "status":
            rp.add_argument("-w", "--watch", type=flags.boolean, nargs="?", const=True, default=True)
            rp.add_argument("--timeout", default="", help="give up after this long (e.g. 5m; 0: forever)")
            rp.add_argument("--revision", type=int, default=0)
        elif name == "history":
            rp.add_argument("--revision", type=int, default=0)
        elif name == "undo":
            rp.add_argument("--to-revision", type=int, default=0)

    p = cmd("api-resources", "Print the supported API resources on the server")
    p.add_argument("--namespaced", choices=("true", "false"), default=None)
    p.add_argument("--api-group", default=None)
    p.add_argument("-o", "--output", choices=("wide", "name"), default="")
    p.add_argument("--no-headers", action="store_true")

    p = cmd("explain", "Get documentation for a resource")
    p.add_argument("target", metavar="TYPE[.FIELD...]")
    p.add_argument("--recursive", action="store_true")

    p = cmd("logs", "Print the logs for a container in a pod")
    p.add_argument("pod")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-p", "--previous", action="store_true")
    p.add_argument("-c", "--container", default="")
    p.add_argument("--tail", type=int, default=-1)
    p.add_argument("--timestamps", action="store_true")

    p = cmd("exec", "Execute a command in a container")
    p.add_argument("-i", "--stdin", action="store_true")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-c", "--container", default="")
    p.add_argument("pod")
    p.add_argument("cmd", nargs="*", metavar="-- COMMAND [args...]")

    p = cmd("top", "Display resource (CPU/memory) usage")
    tsub = p.add_subparsers(dest="top_cmd", metavar="SUBCOMMAND", parser_class=Parser)
    tsub.required = True
    for name, aliases, help_ in (("nodes", ("node", "no"), "Display resource (CPU/memory) usage of nodes"),
                                 ("pods", ("pod", "po"), "Display resource (CPU/memory) usage of pods")):
        tp = tsub.add_parser(name, aliases=list(aliases), help=help_, parents=[common])
        tp.add_argument("name", nargs="?", default="")
        tp.add_argument("-l", "--selector", default="", help="label selector")
        tp.add_argument("--no-headers", action="store_true")
        if name == "pods":
            tp.add_argument("--containers", action="store_true", help="show the containers of each pod")

    p = cmd("trace", "Show one timeline of what happened to an object and its descendants")
    p.add_argument("resources", nargs="*", metavar="TYPE/NAME | TYPE NAME")
    p.add_argument("-o", "--output", default="", help="json|yaml")
    p.add_argument("--no-headers", action="store_true")

    p = cmd("version", "Print the client and server version information")
    p.add_argument("--client", action="store_true")
    p.add_argument("-o", "--output", choices=("json", "yaml"), default="")

    p = cmd("config", "Show the client configuration")
    csub = p.add_subparsers(dest="config_cmd", metavar="SUBCOMMAND", parser_class=Parser)
    csub.required = True
    cp = csub.add_parser("view", help="Display the merged config", parents=[common])
    cp.add_argument("--raw", action="store_true")
    cp.add_argument("--minify", action="store_true")
    cp.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    csub.add_parser("current-context", help="Display the current-context", parents=[common])
    csub.add_parser("get-contexts", help="Describe one or many contexts", parents=[common])
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    argv = list(argv)
    tail: list[str] | None = None
    if "exec" in argv and "--" in argv[argv.index("exec"):]:
        cut = argv.index("--", argv.index("exec"))
        argv, tail = argv[:cut], argv[cut + 1:]
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
    if args.command == "exec":
        args.cmd = list(args.cmd) + (tail or [])
        if not args.cmd:
            raise CliError("you must specify at least one command for the container")
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
               all_namespaces=bool(args.all_namespaces), verbosity=int(args.verbosity or 0), config_error=cfg_error)


async def dispatch(ctx: Ctx, args: argparse.Namespace) -> int:
    c = args.command
    if c == "apply":
        from pbctl.verbs.apply import run_apply

        return await run_apply(ctx, args)
    if c == "create":
        from pbctl.verbs.apply import run_create

        return await run_create(ctx, args)
    if c == "get":
        from pbctl.verbs.get import run_get

        return await run_get(ctx, args)
    if c == "describe":
        from pbctl.verbs.describe import run_describe

        return await run_describe(ctx, args)
    if c == "delete":
        from pbctl.verbs.delete import run_delete

        return await run_delete(ctx, args)
    if c == "edit":
        from pbctl.verbs.edit import run_edit

        return await run_edit(ctx, args)
    if c == "label":
        from pbctl.verbs.label import run_label

        return await run_label(ctx, args)
    if c == "annotate":
        from pbctl.verbs.label import run_annotate

        return await run_annotate(ctx, args)
    if c == "scale":
        from pbctl.verbs.scale import run_scale

        return await run_scale(ctx, args)
    if c == "rollout":
        from pbctl.verbs.rollout import run_rollout

        return await run_rollout(ctx, args)
    if c == "api-resources":
        from pbctl.verbs.misc import run_api_resources

        return await run_api_resources(ctx, args)
    if c == "explain":
        from pbctl.verbs.explain import run_explain

        return await run_explain(args)
    if c == "logs":
        from pbctl.verbs.logs import run_logs

        return await run_logs(ctx, args)
    if c == "exec":
        from pbctl.verbs.exec import run_exec

        return await run_exec(ctx, args)
    if c == "top":
        from pbctl.verbs.top import run_top

        return await run_top(ctx, args)
    if c == "trace":
        from pbctl.verbs.trace import run_trace

        return await run_trace(ctx, args)
    if c == "version":
        from pbctl.verbs.misc import run_version

        return await run_version(ctx, args)
    if c == "config":
        from pbctl.verbs.misc import run_config

        return await run_config(args)
    raise CliError(f'unknown command "{c}" for "pbctl"')


async def run(argv: Sequence[str]) -> int:
    """Run one pbctl command; returns the exit code (errors are printed to stderr, kubectl-style)."""
    ctx: Ctx | None = None
    plugin = plugins.find(list(argv), plugins.builtin_verbs(build_parser()))
    if plugin is not None:
        proc = await asyncio.create_subprocess_exec(plugin, *argv[1:])
        return await proc.wait()
    try:
        args = parse_args(argv)
        if args.verbosity:
            logging.basicConfig(level=logging.DEBUG if args.verbosity >= 6 else logging.INFO,
                                format="%(levelname)s %(name)s: %(message)s")
        ctx = make_ctx(args)
        return await dispatch(ctx, args)
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


def main(argv: Sequence[str] | None = None) -> None:
    try:
        code = asyncio.run(run(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
