"""The project's one exception tree.

API errors carry Kubernetes' reason, HTTP-equivalent code and, for Invalid, field causes. The apiserver
maps each reason to a gRPC status code and sends the full meta.v1.Status in trailing metadata
(`pb-status-bin`); `pybernetes.client` turns both back into these classes, so callers catch
`NotFound`, `Conflict`, `Expired`... whatever the transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc


class PybernetesError(Exception):
    """Base of every error this project raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One invalid field: `path` as Kubernetes prints it (spec.template.spec.containers[0].image)."""

    path: str
    message: str
    reason: str = "FieldValueInvalid"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@dataclass
class ApiError(PybernetesError):
    message: str = ""
    reason: str = "InternalError"
    code: int = 500
    causes: list[FieldError] = field(default_factory=list)
    kind: str = ""
    name: str = ""
    retry_after_seconds: int = 0  # Status.details.retryAfterSeconds: when to try again (TooManyRequests)

    grpc_code = grpc.StatusCode.INTERNAL
    default_reason = "InternalError"
    default_code = 500

    def __init__(self, message: str = "", *, causes: list[FieldError] | None = None, kind: str = "",
                 name: str = "", reason: str | None = None, code: int | None = None,
                 retry_after_seconds: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.code = code or self.default_code
        self.causes = list(causes or [])
        self.kind = kind
        self.name = name
        self.retry_after_seconds = retry_after_seconds

    def __str__(self) -> str:
        return self.message

    __hash__ = Exception.__hash__


class BadRequest(ApiError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason, default_code = "BadRequest", 400


class Invalid(ApiError):
    """Validation failed; `causes` names every bad field."""

    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason, default_code = "Invalid", 422


class Unauthorized(ApiError):
    grpc_code = grpc.StatusCode.UNAUTHENTICATED
    default_reason, default_code = "Unauthorized", 401


class Forbidden(ApiError):
    grpc_code = grpc.StatusCode.PERMISSION_DENIED
    default_reason, default_code = "Forbidden", 403


class NotFound(ApiError):
    grpc_code = grpc.StatusCode.NOT_FOUND
    default_reason, default_code = "NotFound", 404


class MethodNotAllowed(ApiError):
    grpc_code = grpc.StatusCode.UNIMPLEMENTED
    default_reason, default_code = "MethodNotAllowed", 405


class AlreadyExists(ApiError):
    grpc_code = grpc.StatusCode.ALREADY_EXISTS
    default_reason, default_code = "AlreadyExists", 409


class UnsupportedMediaType(ApiError):
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT
    default_reason, default_code = "UnsupportedMediaType", 415


class Conflict(ApiError):
    """The object changed since it was read (resourceVersion or uid precondition failed)."""

    grpc_code = grpc.StatusCode.ABORTED
    default_reason, default_code = "Conflict", 409


class Expired(ApiError):
    """The requested resourceVersion is too old (compacted): re-list, then watch again."""

    grpc_code = grpc.StatusCode.OUT_OF_RANGE
    default_reason, default_code = "Expired", 410


class TooLarge(ApiError):
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason, default_code = "RequestEntityTooLarge", 413


class TooManyRequests(ApiError):
    """The apiserver is over its in-flight budget and refused before doing anything: retry after
    `retry_after_seconds`, whatever the verb. Over gRPC it shares RESOURCE_EXHAUSTED with TooLarge; the Status in
    the trailing metadata (reason TooManyRequests) tells them apart, and a bare RESOURCE_EXHAUSTED (grpc's own
    message-size refusal) stays TooLarge."""

    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED
    default_reason, default_code = "TooManyRequests", 429


class InternalError(ApiError):
    grpc_code = grpc.StatusCode.INTERNAL
    default_reason, default_code = "InternalError", 500


class Unavailable(ApiError):
    """The server (or its storage) cannot answer now; retry later."""

    grpc_code = grpc.StatusCode.UNAVAILABLE
    default_reason, default_code = "ServiceUnavailable", 503


class Unreachable(Unavailable):
    """The client could not reach the apiserver at all (no connection, refused, lost): raised by the client for a
    call that failed without an answer, never by the server, so a client can tell "cannot reach the server" from
    the server's own 503 (say, for a kubelet it cannot reach), as kubectl does."""


class Timeout(ApiError):
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED
    default_reason, default_code = "Timeout", 504


BY_REASON: dict[str, type[ApiError]] = {
    c.default_reason: c
    for c in (BadRequest, Invalid, Unauthorized, Forbidden, NotFound, MethodNotAllowed, AlreadyExists,
              Conflict, Expired, TooLarge, TooManyRequests, UnsupportedMediaType, InternalError, Unavailable,
              Timeout)
}
BY_REASON["Gone"] = Expired

BY_GRPC_CODE: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: BadRequest,
    grpc.StatusCode.UNAUTHENTICATED: Unauthorized,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNIMPLEMENTED: MethodNotAllowed,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.OUT_OF_RANGE: Expired,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooLarge,  # TooManyRequests only by its Status' reason
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Timeout,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.CANCELLED: Unavailable,
}


class ManifestError(PybernetesError):
    """A manifest could not be read: names the file/document and every bad field."""

    def __init__(self, where: str, errors: list[FieldError]) -> None:
        self.where = where
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{where}:\n{lines}" if len(errors) > 1 else f"{where}: {errors[0] if errors else ''}")


class ConfigError(PybernetesError):
    """A bad flag, config file or kubeconfig."""
