"""config view / current-context / get-contexts: the kubeconfig, merged from its search path as kubectl merges
it (secrets redacted)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from pbctl import printers, verb
from pbctl.common import CliError, Ctx, out
from pybernetes import errors
from pybernetes.client import config as client_config


def arguments(p: argparse.ArgumentParser) -> None:
    sub = verb.subcommands(p, "config_cmd")
    view = verb.subcommand(sub, "view", "Display the merged config")
    view.add_argument("--raw", action="store_true")
    view.add_argument("--minify", action="store_true")
    view.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    verb.subcommand(sub, "current-context", "Display the current-context")
    verb.subcommand(sub, "get-contexts", "Describe one or many contexts")


def _redact(doc: dict[str, Any]) -> dict[str, Any]:
    for u in doc.get("users") or []:
        user = u.get("user") if isinstance(u, dict) else None
        if isinstance(user, dict):
            for k in ("token", "client-key-data", "password"):
                if k in user:
                    user[k] = "REDACTED"
    return doc


def _merged(paths: list[Path]) -> dict[str, Any]:
    try:
        return client_config.merged(paths)
    except errors.ConfigError as e:
        raise CliError(str(e)) from None


async def run_config(ctx: Ctx, args: argparse.Namespace) -> int:
    paths = client_config.search_paths(args.config)
    found = any(p.exists() for p in paths)
    if args.config_cmd == "view":
        if not found:
            out(yaml.safe_dump({"apiVersion": "v1", "clusters": None, "contexts": None, "current-context": "",
                                "kind": "Config", "preferences": {}, "users": None}, sort_keys=False).rstrip())
            return 0
        doc = _merged(paths)
        if args.minify:
            cur = doc.get("current-context")
            ctxs = [c for c in doc.get("contexts") or [] if c.get("name") == cur]
            ctx_body = ctxs[0].get("context", {}) if ctxs else {}
            doc["contexts"] = ctxs
            doc["clusters"] = [c for c in doc.get("clusters") or [] if c.get("name") == ctx_body.get("cluster")]
            doc["users"] = [u for u in doc.get("users") or [] if u.get("name") == ctx_body.get("user")]
        if not args.raw:
            doc = _redact(doc)
        if args.output == "json":
            import json

            out(json.dumps(doc, indent=4))
        else:
            out(yaml.safe_dump(doc, sort_keys=False).rstrip("\n"))
        return 0
    if not found:
        raise CliError("current-context is not set")
    doc = _merged(paths)
    if args.config_cmd == "current-context":
        cur = doc.get("current-context")
        if not cur:
            raise CliError("current-context is not set")
        out(str(cur))
        return 0
    if args.config_cmd == "get-contexts":
        cur = doc.get("current-context")
        rows = []
        for c in doc.get("contexts") or []:
            body = c.get("context") or {}
            rows.append(["*" if c.get("name") == cur else "", str(c.get("name", "")), str(body.get("cluster", "")),
                         str(body.get("user", "")), str(body.get("namespace", ""))])
        out(printers.render_table(["CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE"], rows).rstrip("\n"))
        return 0
    raise CliError(f"unknown config command {args.config_cmd!r}")


VERB = verb.Verb("config", "Show the client configuration", arguments, run_config, rank=180)
