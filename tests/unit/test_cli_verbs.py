"""pbctl's verb registry: every module in pbctl.verbs declares its subcommand, and the command line they
build together is pbctl's (verbs in help order, each verb's flags), plus a quiet exit on a closed stdout."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import pbctl.verbs
from pbctl import plugins, verb, verbs
from pbctl.main import build_parser, parse_args, run

HELP_ORDER = ["apply", "create", "run", "set", "get", "describe", "delete", "edit", "label", "annotate", "scale",
              "patch", "wait", "rollout", "api-resources", "explain", "logs", "exec", "attach", "port-forward", "auth",
              "top", "trace", "dashboard", "version", "etcd", "certs", "config"]

GLOBAL = {"config", "namespace", "all_namespaces", "context", "server", "token", "verbosity", "as_user", "as_groups",
          "help"}

# Each (sub)command's own arguments, positionals by name and flags by their long form.
ARGUMENTS = {
    "apply": ["--filename", "--recursive", "--output", "--dry-run"],
    "create": ["--filename", "--recursive", "--output", "--dry-run"],
    "create namespace": ["name", "--dry-run", "--output"],
    "create deployment": ["--image", "--port", "--replicas", "name", "--dry-run", "--output"],
    "create service": [],
    "create service clusterip": ["name", "--tcp", "--clusterip", "--dry-run", "--output"],
    "create service nodeport": ["name", "--tcp", "--node-port", "--dry-run", "--output"],
    "create service loadbalancer": ["name", "--tcp", "--dry-run", "--output"],
    "create configmap": ["--from-literal", "--from-file", "name", "--dry-run", "--output"],
    "create secret": [],
    "create secret generic": ["--type", "--from-literal", "--from-file", "name", "--dry-run", "--output"],
    "create serviceaccount": ["name", "--dry-run", "--output"],
    "create token": ["name", "--duration", "--audience", "--bound-object-kind", "--bound-object-name",
                     "--bound-object-uid"],
    "run": ["name", "--image", "--port", "--env", "--labels", "--restart", "--command", "--dry-run", "--output",
            "args"],
    "set": [],
    "set image": ["args", "--selector", "--all", "--dry-run", "--output"],
    "set env": ["args", "--selector", "--all", "--containers", "--env", "--from", "--prefix", "--list", "--dry-run",
                "--output"],
    "set resources": ["args", "--selector", "--all", "--containers", "--limits", "--requests", "--dry-run", "--output"],
    "get": ["resources", "--output", "--watch", "--watch-only", "--output-watch-events", "--selector",
            "--field-selector", "--show-labels", "--no-headers", "--sort-by", "--request-timeout"],
    "describe": ["resources", "--selector", "--show-events"],
    "delete": ["resources", "--filename", "--recursive", "--selector", "--field-selector", "--all", "--grace-period",
               "--now", "--force", "--cascade", "--wait", "--timeout", "--ignore-not-found", "--output", "--dry-run"],
    "edit": ["resources", "--output"],
    "label": ["args", "--filename", "--recursive", "--overwrite", "--selector", "--all", "--list",
              "--resource-version", "--output", "--dry-run"],
    "annotate": ["args", "--filename", "--recursive", "--overwrite", "--selector", "--all", "--list",
                 "--resource-version", "--output", "--dry-run"],
    "scale": ["resources", "--filename", "--recursive", "--replicas", "--current-replicas", "--selector", "--all",
              "--output", "--dry-run"],
    "patch": ["resources", "--patch", "--patch-file", "--type", "--subresource", "--dry-run", "--output"],
    "wait": ["resources", "--for", "--timeout", "--selector", "--field-selector", "--all"],
    "rollout": [],
    "rollout status": ["resources", "--dry-run", "--watch", "--timeout", "--revision"],
    "rollout history": ["resources", "--dry-run", "--revision"],
    "rollout undo": ["resources", "--dry-run", "--to-revision"],
    "rollout restart": ["resources", "--dry-run"],
    "rollout pause": ["resources", "--dry-run"],
    "rollout resume": ["resources", "--dry-run"],
    "api-resources": ["--namespaced", "--api-group", "--output", "--no-headers"],
    "explain": ["target", "--recursive"],
    "logs": ["pod", "--follow", "--previous", "--container", "--tail", "--timestamps"],
    "exec": ["--stdin", "--tty", "--container", "pod", "cmd"],
    "attach": ["--stdin", "--tty", "--container", "pod"],
    "auth": [],
    "auth can-i": ["args", "--subresource", "--list", "--quiet"],
    "auth whoami": ["--output"],
    "port-forward": ["target", "ports", "--address"],
    "top": [],
    "top nodes": ["name", "--selector", "--no-headers"],
    "top pods": ["name", "--selector", "--no-headers", "--containers"],
    "trace": ["resources", "--output", "--no-headers"],
    "dashboard": ["--address", "--port", "--readyz"],
    "version": ["--client", "--output"],
    "etcd": [],
    "etcd snapshot": [],
    "etcd snapshot save": ["file"],
    "etcd snapshot status": ["file", "--output"],
    "etcd snapshot restore": ["file", "--lab", "--data-dir", "--dir", "--name", "--initial-advertise-peer-urls"],
    "certs": [],
    "certs check-expiration": ["--cert-dir"],
    "certs renew": ["--cert-dir", "target"],
    "config": [],
    "config view": ["--raw", "--minify", "--output"],
    "config current-context": [],
    "config get-contexts": [],
}


def _arguments(p: argparse.ArgumentParser, path: list[str], found: dict[str, list[str]]) -> None:
    own: list[str] = []
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                if sub.prog.split()[-1] == name:  # aliases share the parser
                    _arguments(sub, [*path, name], found)
        elif a.dest not in GLOBAL:
            own.append(a.option_strings[-1] if a.option_strings else a.dest)
    if path:
        found[" ".join(path)] = own


def test_every_verb_module_registers_itself() -> None:
    modules = [m.name for m in pkgutil.iter_modules(pbctl.verbs.__path__)]
    for name in modules:
        declared = getattr(importlib.import_module(f"pbctl.verbs.{name}"), "VERB", None)
        assert isinstance(declared, verb.Verb), f"pbctl/verbs/{name}.py declares no VERB"
        assert declared.name == name.replace("_", "-")
    assert [v.name for v in verbs.all_verbs()] == HELP_ORDER
    assert len({v.rank for v in verbs.all_verbs()}) == len(HELP_ORDER)


def test_help_lists_the_verbs_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    section = text.split("\n  COMMAND\n", 1)[1].split("\n\n")[0]
    listed = [ln.split()[0] for ln in section.splitlines() if ln.startswith("    ") and ln[4] != " "]
    assert listed == HELP_ORDER


def test_each_verb_keeps_its_arguments() -> None:
    found: dict[str, list[str]] = {}
    _arguments(build_parser(), [], found)
    assert found == ARGUMENTS


def test_run_takes_everything_after_dashes() -> None:
    r = parse_args(["run", "box", "--image=busybox", "--command", "--", "sh", "-c", "echo --x"])
    assert (r.name, r.as_command, r.args) == ("box", True, ["sh", "-c", "echo --x"])


def test_exec_takes_everything_after_dashes() -> None:
    e = parse_args(["-n", "x", "exec", "web", "--", "ls", "-la", "--", "y"])
    assert (e.namespace, e.pod, e.cmd) == ("x", "web", ["ls", "-la", "--", "y"])
    assert parse_args(["exec", "web", "echo"]).cmd == ["echo"]


async def test_exec_without_a_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert await run(["--server", "127.0.0.1:1", "exec", "web"]) == 1
    assert capsys.readouterr().err.strip() == "error: you must specify at least one command for the container"


def test_closed_stdout_exits_quietly() -> None:
    """`pbctl ... | head -1`: the reader is gone before pbctl writes; no BrokenPipeError traceback."""
    r, w = os.pipe()
    os.close(r)
    try:
        res = subprocess.run([sys.executable, "-m", "pbctl.main", "explain", "pods"], stdout=w,
                             stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(w)
    assert res.stderr == ""
    assert res.returncode == 141


def test_plugins_know_every_verb_from_its_module_name_alone() -> None:
    # pbctl.entry decides "plugin or verb" from module names, before any verb is imported
    assert plugins.builtin_names() == set(verbs.by_name())


def test_a_plugin_replaces_pbctl_and_a_verb_name_never_runs_one(tmp_path: Path) -> None:
    # a pbctl-NAME on PATH prints its argv and its parent: execv'd, its parent is the one that started pbctl
    for name in ("hello", "get"):
        script = tmp_path / f"pbctl-{name}"
        script.write_text('#!/bin/sh\necho "$0 $* ppid=$PPID"\n')
        script.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    starter = "import os, subprocess, sys; print(os.getpid()); sys.stdout.flush(); subprocess.run(sys.argv[1:])"
    entry = "from pbctl.entry import main; main()"
    out = subprocess.run([sys.executable, "-c", starter, sys.executable, "-c", entry, "hello", "a", "b"],
                         capture_output=True, text=True, env=env, timeout=60, check=True).stdout.split("\n")
    assert out[1] == f"{tmp_path}/pbctl-hello a b ppid={out[0]}"
    res = subprocess.run([sys.executable, "-c", entry, "get", "--help"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert res.returncode == 0 and "pbctl-get" not in res.stdout and "usage: pbctl get" in res.stdout
