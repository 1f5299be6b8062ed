"""Errors raised by the CRI client: gRPC status codes turned into a small exception tree."""

from __future__ import annotations

import grpc


class CRIError(Exception):
    """A CRI call failed; `code` is the gRPC status code and `method` the RPC name."""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, method: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.method = method

    def __str__(self) -> str:
        where = f"{self.method}: " if self.method else ""
        code = f" ({self.code.name})" if self.code is not None else ""
        return f"{where}{self.message}{code}"


class CRIUnavailable(CRIError):
    """The runtime did not answer (socket missing, runtime down, or the call timed out)."""


class NotFound(CRIError):
    """The sandbox, container or image named in the call does not exist."""


class ImagePullError(CRIError):
    """PullImage failed (unknown image, registry unreachable, bad manifest...)."""


def translate(err: grpc.RpcError, method: str) -> CRIError:
    """Map a gRPC error from `method` to the matching CRIError subclass."""
    code = err.code() if hasattr(err, "code") else None
    details = (err.details() if hasattr(err, "details") else None) or str(err)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return CRIUnavailable(details, code=code, method=method)
    if method == "PullImage":
        return ImagePullError(details, code=code, method=method)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details, code=code, method=method)
    return CRIError(details, code=code, method=method)
