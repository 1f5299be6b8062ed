"""Kubernetes' channel WebSocket protocol for pods/exec and pods/attach (`v5.channel.k8s.io`, `v4.channel.k8s.io`).

Every binary WebSocket message starts with one byte naming its channel: 0 stdin (client -> server), 1 stdout,
2 stderr, 3 error (the final Status, with the exit code), 4 resize (a JSON TerminalSize from the client). v5 adds
255, close: its one payload byte names a channel the sender is done with (the client's stdin EOF). Pure framing
and the error channel's Status; streams.py bridges it to the kubelet's exec stream.
"""

from __future__ import annotations

import json
from typing import Any

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)  # the server's preference; the client's order picks among them

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255  # v5 only


class FrameError(ValueError):
    """A message the protocol does not allow."""


def frame(channel: int, data: bytes) -> bytes:
    return bytes((channel,)) + data


def parse(message: bytes) -> tuple[int, bytes]:
    """(channel, payload) of a client message."""
    if not message:
        raise FrameError("an empty message names no channel")
    return message[0], message[1:]


def resize(payload: bytes) -> tuple[int, int]:
    """(width, height) of a resize message ({"Width": w, "Height": h}, as client-go's TerminalSize)."""
    try:
        doc = json.loads(payload)
        return int(doc.get("Width", 0)), int(doc.get("Height", 0))
    except (ValueError, TypeError, AttributeError) as e:
        raise FrameError(f"a resize message is not a TerminalSize: {e}") from None


def closed_channel(payload: bytes) -> int:
    """The channel a v5 close message names."""
    if len(payload) != 1:
        raise FrameError("a close message names exactly one channel")
    return payload[0]


def exit_status(code: int, command: list[str]) -> dict[str, Any]:
    """The error channel's Status for a finished command: Success, or NonZeroExitCode with the code as
    client-go's remotecommand reads it (details.causes[reason=ExitCode].message)."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {"metadata": {}, "status": "Failure",
            "message": f"command terminated with non-zero exit code: error executing command {command}, "
                       f"exit code {code}",
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def error_status(message: str, reason: str = "InternalError", code: int = 500) -> dict[str, Any]:
    """The error channel's Status when the command could not run or the stream broke."""
    return {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code}


def encode_status(status: dict[str, Any]) -> bytes:
    return frame(ERROR, json.dumps(status, separators=(",", ":")).encode())
