"""The channel WebSocket framing of pods/exec (v4/v5.channel.k8s.io), the REST queries of pods/log and exec, and the
WebSocket upgrade checks the streaming subresources share."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import MultiDict

from pybernetes import errors
from services.apiserver.http import channels, streams, websocket


def test_frames_carry_their_channel_in_the_first_byte() -> None:
    assert channels.frame(channels.STDOUT, b"hi\n") == b"\x01hi\n"
    assert channels.parse(b"\x00input") == (channels.STDIN, b"input")
    assert channels.parse(b"\x00") == (channels.STDIN, b"")
    with pytest.raises(channels.FrameError):
        channels.parse(b"")


def test_resize_and_close_messages() -> None:
    assert channels.resize(b'{"Width":80,"Height":24}') == (80, 24)
    with pytest.raises(channels.FrameError):
        channels.resize(b"not json")
    assert channels.closed_channel(b"\x00") == channels.STDIN
    with pytest.raises(channels.FrameError):
        channels.closed_channel(b"")


def test_exit_status_as_client_go_reads_it() -> None:
    assert channels.exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failed = channels.exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["status"] == "Failure" and failed["reason"] == "NonZeroExitCode"
    assert failed["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]}
    encoded = channels.encode_status(failed)
    assert encoded[0] == channels.ERROR and json.loads(encoded[1:]) == failed


def test_log_query_becomes_the_kubelet_request() -> None:
    q = MultiDict({"container": "c", "follow": "true", "tailLines": "5", "timestamps": "1", "limitBytes": "100",
                   "sinceSeconds": "30"})
    req = streams.log_request(q, "ns", "p")
    assert (req.namespace, req.name, req.container, req.follow, req.tail_lines, req.timestamps, req.limit_bytes,
            req.since_seconds, req.previous) == ("ns", "p", "c", True, 5, True, 100, 30, False)
    assert streams.log_request(MultiDict(), "ns", "p").tail_lines == -1  # all lines
    with pytest.raises(errors.BadRequest, match="tailLines"):
        streams.log_request(MultiDict({"tailLines": "x"}), "ns", "p")


def test_exec_query_becomes_the_kubelet_start() -> None:
    q = MultiDict([("command", "sh"), ("command", "-c"), ("command", "echo hi"), ("stdout", "True"),
                   ("stderr", "True"), ("stdin", "False"), ("container", "c")])
    start, out, err = streams.exec_start(q, "ns", "p")
    assert list(start.command) == ["sh", "-c", "echo hi"] and (start.stdin, start.tty, out, err) == \
        (False, False, True, True)
    start, out, err = streams.exec_start(MultiDict([("command", "sh"), ("stdout", "1"), ("stderr", "1"),
                                                    ("tty", "1")]), "ns", "p")
    assert start.tty and out and not err  # a terminal has no separate stderr
    with pytest.raises(errors.BadRequest, match="at least one command"):
        streams.exec_start(MultiDict({"stdout": "1"}), "ns", "p")
    with pytest.raises(errors.BadRequest, match="at least 1 of stdin, stdout, stderr"):
        streams.exec_start(MultiDict({"command": "true"}), "ns", "p")


def _upgrade_request(upgrade: str, protocols: str = "") -> web.Request:
    headers = {"Connection": "Upgrade", "Upgrade": upgrade, "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    if protocols:
        headers["Sec-WebSocket-Protocol"] = protocols
    return make_mocked_request("GET", "/api/v1/namespaces/default/pods/p/exec", headers=headers)


def test_streaming_subresources_refuse_what_is_not_a_websocket_upgrade_with_their_protocol() -> None:
    hint = "use kubectl 1.30 or newer"

    def refusal(req: web.Request) -> str:
        with pytest.raises(errors.BadRequest) as ei:
            websocket.refuse_unless_websocket(req, "attach", channels.PROTOCOLS, hint)
        return ei.value.message

    assert refusal(_upgrade_request("SPDY/3.1")) == ("SPDY is not supported for pods/attach: this server speaks "
                                                     "WebSocket (v5.channel.k8s.io, v4.channel.k8s.io); " + hint)
    assert refusal(_upgrade_request("")).startswith("Upgrade request required: pods/attach is a WebSocket stream")
    assert "offered: v1.channel.k8s.io" in refusal(_upgrade_request("websocket", "v1.channel.k8s.io"))
    assert "offered: none" in refusal(_upgrade_request("websocket"))
    req = _upgrade_request("WebSocket", "base64.channel.k8s.io, v4.channel.k8s.io, v5.channel.k8s.io")
    websocket.refuse_unless_websocket(req, "attach", channels.PROTOCOLS, hint)
    assert websocket.offered_protocols(req) == ["base64.channel.k8s.io", "v4.channel.k8s.io", "v5.channel.k8s.io"]
    ready = web.WebSocketResponse(protocols=channels.PROTOCOLS).can_prepare(req)
    assert ready.protocol == "v4.channel.k8s.io"  # the client's order picks, as upgrade() documents
