"""auth: `auth can-i VERB RESOURCE [NAME]` (yes/no, exit 1 on no; `--list` prints the rules) and `auth whoami`,
as kubectl asks them: a SelfSubjectAccessReview, SelfSubjectRulesReview or SelfSubjectReview the apiserver
answers without storing. With --as/--as-group the question is asked as that user."""

from __future__ import annotations

import argparse
import json

import yaml

from pbctl import verb
from pbctl.common import CliError, Ctx, err, out
from pybernetes.api import codec, kinds
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.authorization.v1 import authorization_pb2 as authz


def arguments(p: argparse.ArgumentParser) -> None:
    sub = verb.subcommands(p, "auth_command")
    can = verb.subcommand(sub, "can-i", "Check whether an action is allowed")
    can.add_argument("args", nargs="*", metavar="VERB TYPE[/NAME] | VERB TYPE [NAME] | VERB URL",
                     help="e.g. `create pods`, `get pods/web`, `list deployments.apps`, `get /healthz`")
    can.add_argument("--subresource", default="", help="a subresource such as log or status (`get pods "
                                                         "--subresource=log`)")
    can.add_argument("--list", action="store_true", help="list every action allowed in the namespace")
    can.add_argument("-q", "--quiet", action="store_true", help="print nothing; only the exit code says")
    who = verb.subcommand(sub, "whoami", "Show the user and groups the apiserver sees")
    who.add_argument("-o", "--output", choices=("json", "yaml"), default="")


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _brackets(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"


async def _list(ctx: Ctx) -> int:
    review = authz.SelfSubjectRulesReview()
    review.spec.namespace = ctx.namespace
    got = await ctx.client.create(review)
    st = got.status
    rows = [["Resources", "Non-Resource URLs", "Resource Names", "Verbs"]]
    resource_rows = []
    for r in st.resource_rules:
        for g in r.api_groups or [""]:
            for res in r.resources:
                name = f"{res}.{g}" if g else res
                resource_rows.append([name, "[]", _brackets(list(r.resource_names)), _brackets(list(r.verbs))])
    rows += sorted(resource_rows)
    rows += [["", _brackets(list(r.non_resource_urls)), "[]", _brackets(list(r.verbs))]
             for r in st.non_resource_rules]
    _table(rows)
    if st.incomplete:
        err("Warning: the list may be incomplete: an authorizer of the apiserver cannot list rules")
    return 0


async def _can_i(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.list:
        if args.args:
            raise CliError("--list takes no VERB or RESOURCE")
        return await _list(ctx)
    if len(args.args) not in (2, 3):
        raise CliError("you must specify two or three arguments: verb, resource, and optional resourceName")
    verb_, target = args.args[0], args.args[1]
    review = authz.SelfSubjectAccessReview()
    spec = review.spec
    if target.startswith("/"):
        spec.non_resource_attributes.path, spec.non_resource_attributes.verb = target, verb_
    else:
        res, _, name = target.partition("/")  # TYPE/NAME, as kubectl reads it
        info = kinds.lookup(res) if res != "*" else None
        ra = spec.resource_attributes
        ra.verb, ra.subresource = verb_, args.subresource
        ra.name = args.args[2] if len(args.args) == 3 else name
        if info is not None:
            ra.resource, ra.group = info.plural, info.group
            ra.namespace = "" if not info.namespaced or ctx.all_namespaces else ctx.namespace
        else:
            if res != "*":
                err(f"Warning: the server doesn't have a resource type '{res}'")
            plural, _, group = res.partition(".")
            ra.resource, ra.group = plural, group
            ra.namespace = "" if ctx.all_namespaces else ctx.namespace
    got = await ctx.client.create(review)
    allowed = got.status.allowed
    if not args.quiet:
        out("yes" if allowed else "no")
    return 0 if allowed else 1


async def _whoami(ctx: Ctx, args: argparse.Namespace) -> int:
    got = await ctx.client.create(authn.SelfSubjectReview())
    if args.output:
        doc = codec.to_dict(got)
        out(json.dumps(doc, indent=4) if args.output == "json" else yaml.safe_dump(doc).rstrip("\n"))
        return 0
    ui = got.status.user_info
    rows = [["ATTRIBUTE", "VALUE"], ["Username", ui.username]]
    if ui.uid:
        rows.append(["UID", ui.uid])
    rows.append(["Groups", _brackets(list(ui.groups))])
    _table(rows)
    return 0


async def run_auth(ctx: Ctx, args: argparse.Namespace) -> int:
    if args.auth_command == "can-i":
        return await _can_i(ctx, args)
    return await _whoami(ctx, args)


VERB = verb.Verb("auth", "Inspect authorization (can-i) and who you are (whoami)", arguments, run_auth, rank=147)
