"""Running the netfilter/conntrack tools, optionally inside another network namespace.

`Runner(prefix)` prepends `prefix` to every command: empty when pb-proxy runs inside the node's namespace
(production and the lab), `["nsenter", "--net=/run/netns/NODE"]` when tests run the proxier in-process.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class CommandError(Exception):
    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} exited {returncode}: {stderr.strip()[:2000]}")
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr


class Runner:
    def __init__(self, prefix: Sequence[str] = ()) -> None:
        self.prefix = list(prefix)

    def argv(self, *cmd: str) -> list[str]:
        return [*self.prefix, *cmd]

    def run(self, *cmd: str, input: str | None = None, check: bool = True,
            timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*cmd)
        res = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and res.returncode != 0:
            raise CommandError(argv, res.returncode, res.stderr or res.stdout)
        return res


def nsenter_prefix(netns: str) -> list[str]:
    return ["nsenter", f"--net=/run/netns/{netns}"]
