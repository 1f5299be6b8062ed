"""certs check-expiration / renew: the cluster's certificates, as kubeadm's `certs` verbs.

Both work on a pki dir in kubeadm's layout (pybernetes.tls): --cert-dir, else the local lab's
($PB_LAB_DIR or /var/lib/pybernetes/lab, control-plane/apiserver/pki) when there is one, else a standalone
or installed apiserver's (/var/lib/pybernetes/apiserver/pki). `check-expiration` prints kubeadm's two
tables (certificates, then certificate authorities); `renew all|NAME` re-issues certificates with the same
subject, SANs and usages from their CA in the same dir. Components read their certificates when they start:
restart them to use the new ones (`pbctl lab restart COMPONENT`, `systemctl restart pb-COMPONENT`); the lab
writes its kubeconfigs at `lab up`, a standalone apiserver rewrites admin.conf at each start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from pbctl import verb
from pbctl.common import CliError, Ctx, out
from pbctl.printers import render_table
from pybernetes import pkiutil

LAB_DIR_ENV, LAB_DIR = "PB_LAB_DIR", Path("/var/lib/pybernetes/lab")
STANDALONE_PKI = Path("/var/lib/pybernetes/apiserver/pki")


def default_cert_dir() -> Path:
    lab = Path(os.environ.get(LAB_DIR_ENV) or LAB_DIR) / "control-plane" / "apiserver" / "pki"
    return lab if (lab / "ca.crt").exists() else STANDALONE_PKI


def arguments(p: argparse.ArgumentParser) -> None:
    sub = verb.subcommands(p, "certs_cmd")
    for name, help_ in (("check-expiration", "Check the expiration of the cluster's certificates"),
                        ("renew", "Renew certificates (all, or one by NAME as check-expiration lists it)")):
        sp = verb.subcommand(sub, name, help_)
        sp.add_argument("--cert-dir", type=Path, default=None,
                        help="the pki dir (default: the local lab's, else /var/lib/pybernetes/apiserver/pki)")
        if name == "renew":
            sp.add_argument("target", metavar="all|NAME")


def residual(expires: dt.datetime, now: dt.datetime) -> str:
    """kubeadm's RESIDUAL TIME: years, days or hours left; <invalid> once expired."""
    left = expires - now
    if left.total_seconds() <= 0:
        return "<invalid>"
    if left.days >= 365:
        return f"{left.days // 365}y"
    if left.days >= 1:
        return f"{left.days}d"
    return f"{int(left.total_seconds() // 3600)}h"


def _when(t: dt.datetime) -> str:
    return t.strftime("%b %d, %Y %H:%M UTC")


def _inventory(cert_dir: Path) -> list[pkiutil.CertInfo]:
    if not (cert_dir / "ca.crt").exists():
        raise CliError(f"{cert_dir}: no ca.crt: not a pki dir (start the apiserver or `pbctl lab up`, or pass "
                       f"--cert-dir)")
    return pkiutil.inventory(cert_dir)


def check_expiration(cert_dir: Path) -> int:
    infos, now = _inventory(cert_dir), dt.datetime.now(dt.UTC)
    out(f"CERTIFICATES in {cert_dir}")
    out(render_table(["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"],
                     [[i.name, _when(i.expires), residual(i.expires, now), i.authority or "<unknown>", "no"]
                      for i in infos if not i.is_ca]).rstrip("\n"))
    out("")
    out(render_table(["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"],
                     [[i.name.replace("/", "-"), _when(i.expires), residual(i.expires, now), "no"]
                      for i in infos if i.is_ca]))
    return 0


def renew(cert_dir: Path, target: str) -> int:
    infos = _inventory(cert_dir)
    names = [i.name for i in infos if not i.is_ca]
    if target != "all" and target not in names:
        if target in {i.name for i in infos}:
            raise CliError(f"{target} is a certificate authority: `certs renew` renews the certificates it signed")
        raise CliError(f"unknown certificate {target!r} in {cert_dir}: one of all, {', '.join(names)}")
    for name in names if target == "all" else [target]:
        try:
            pkiutil.renew(cert_dir, name)
        except (OSError, ValueError) as e:
            raise CliError(f"renewing {name}: {e}") from None
        out(f"certificate {name} renewed")
    out("\nDone renewing certificates. Restart the components that use them (pbctl lab restart COMPONENT, or "
        "systemctl restart pb-COMPONENT) so that they pick the new certificates up.")
    return 0


async def run_certs(ctx: Ctx, args: argparse.Namespace) -> int:
    cert_dir = args.cert_dir or default_cert_dir()
    if args.certs_cmd == "check-expiration":
        return check_expiration(cert_dir)
    return renew(cert_dir, args.target)


VERB = verb.Verb("certs", "Check and renew the cluster's certificates (kubeadm's certs)", arguments, run_certs,
                 rank=177)
