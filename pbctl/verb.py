"""What a verb module declares (`VERB = Verb(...)`), and the argparse pieces every verb shares.

Each module in `pbctl.verbs` defines its subcommand in one place: name, aliases, help, an `arguments(parser)`
function adding its flags and positionals, and the `run(ctx, args)` coroutine that does the work.
`pbctl.verbs.all_verbs()` finds them; `pbctl.main` builds the parser and dispatches from that list alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from pbctl.common import CliError, Ctx
from pybernetes.client import config as client_config

SUPPRESS = argparse.SUPPRESS
# The global flags' values when given nowhere (they are SUPPRESSed so a verb's copy cannot reset them).
GLOBAL_DEFAULTS = {"config": None, "namespace": None, "all_namespaces": False, "context": None, "server": None,
                   "token": None, "verbosity": 0, "as_user": None, "as_groups": None}


@dataclass(frozen=True)
class Verb:
    """One pbctl subcommand."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Ctx, argparse.Namespace], Awaitable[int]]
    rank: int  # position in `pbctl --help`: the everyday verbs first, as kubectl lists them
    aliases: tuple[str, ...] = ()
    after_dashes: str = ""  # the list argument that takes everything after `--` (exec's command)


class Parser(argparse.ArgumentParser):
    """argparse that reports errors like kubectl (`error: ...`, exit 1) instead of exiting 2."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message}\nSee '{self.prog} -h' for help and examples")


def global_flags() -> Parser:
    """The flags every verb accepts before or after its name (a parent parser of each)."""
    g = Parser(add_help=False, argument_default=SUPPRESS)
    g.add_argument("--config", "--kubeconfig", dest="config", metavar="PATH",
                   help=client_config.SEARCH_HELP)
    g.add_argument("-n", "--namespace", dest="namespace", help="namespace scope for this request")
    g.add_argument("-A", "--all-namespaces", dest="all_namespaces", action="store_true",
                   help="list across all namespaces")
    g.add_argument("--context", dest="context", help="config context to use")
    g.add_argument("-s", "--server", dest="server", help="address of the apiserver (host:port)")
    g.add_argument("--token", dest="token", help="bearer token")
    g.add_argument("--as", dest="as_user", metavar="USER",
                   help="username to impersonate for the operation (a user or system:serviceaccount:NS:NAME)")
    g.add_argument("--as-group", dest="as_groups", action="append", metavar="GROUP",
                   help="group to impersonate for the operation; repeat for several")
    g.add_argument("-v", "--v", dest="verbosity", type=int, metavar="LEVEL", help="log level verbosity")
    return g


def subcommands(p: argparse.ArgumentParser, dest: str) -> argparse._SubParsersAction[Parser]:
    """A required second level (`rollout status`, `top pods`, `config view`); add to it with `subcommand`."""
    sub = p.add_subparsers(dest=dest, metavar="SUBCOMMAND", parser_class=Parser)
    sub.required = True
    return sub


def subcommand(sub: argparse._SubParsersAction[Parser], name: str, help_: str,
               aliases: Sequence[str] = ()) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_, parents=[global_flags()], aliases=list(aliases))


def files(p: argparse.ArgumentParser, required: bool = False) -> None:
    """-f/--filename and -R, for verbs that read manifests."""
    p.add_argument("-f", "--filename", action="append", default=[], required=required,
                   help="file, directory or '-' (stdin) with manifests")
    p.add_argument("-R", "--recursive", action="store_true", help="process directories recursively")


def dry_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dry-run", nargs="?", const="server", default="none", choices=("none", "client", "server"))


def output_name(p: argparse.ArgumentParser) -> None:
    """-o name: print only `type/name` of each object changed."""
    p.add_argument("-o", "--output", choices=("name",), default="")
