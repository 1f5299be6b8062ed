"""The `pbctl` console script. A first argument naming a plugin rather than a verb (`pbctl lab up`) execs
`pbctl-NAME` at once (pbctl.plugins), before pbctl's verbs and the client library are imported (about 0.45 s of
a plugin's start otherwise); anything else is pbctl.main."""

from __future__ import annotations

import sys

from pbctl import plugins


def main() -> None:
    plugins.exec_plugin(sys.argv[1:])
    from pbctl.main import main as pbctl_main  # here: a plugin never pays for importing it

    pbctl_main()
