"""The audit log's one entry point for both front ends: open a Record when a request arrives, learn the user
and the authorization decision through wrappers around the authenticator and the authorizer (so the front
ends' own code stays as it is), emit each stage's Event as the policy allows, close it with the response.

The open Record lives in a context variable for the request's task: the wrappers, called from deep inside a
front end, find it there. `Auditor.from_flags` is None when --audit-log-path is not given (audit off).
"""

from __future__ import annotations

import contextvars
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..auth import Credentials, UnionAuthenticator, User
from ..authz import Attributes, Authorizer, Result
from . import policy as policies
from .backend import LogBackend
from .policy import Level, Policy
from .record import Record

_current: contextvars.ContextVar[Record | None] = contextvars.ContextVar("audit_record", default=None)


class Auditor:
    def __init__(self, policy: Policy, backend: LogBackend) -> None:
        self.policy = policy
        self.backend = backend

    @classmethod
    def from_flags(cls, path: str, policy_file: Path | None, max_size_mb: int = 0, max_backups: int = 0,
                   max_age_days: int = 0) -> Auditor | None:
        if not path:
            return None
        pol = policies.load(policy_file) if policy_file is not None else policies.METADATA_POLICY
        return cls(pol, LogBackend(path, max_size_mb=max_size_mb, max_backups=max_backups,
                                   max_age_days=max_age_days))

    def start(self) -> None:
        self.backend.start()

    async def stop(self) -> None:
        await self.backend.stop()

    # -- the request's life -------------------------------------------------------------------------

    def begin(self, rec: Record) -> Record:
        rec.token = _current.set(rec)
        return rec

    def authenticated(self, user: User) -> None:
        rec = _current.get()
        if rec is not None and rec.user is None:
            rec.user = user

    def authorized(self, attrs: Attributes, result: Result) -> None:
        rec = _current.get()
        if rec is None:
            return
        rec.authorized(attrs, result.decision, result.reason)
        if rec.attrs is attrs:
            self._emit(rec, "RequestReceived")

    def level(self, rec: Record) -> Level:
        """The policy's level for the request (decided once, on the attributes known by then)."""
        if rec.level is None:
            rec.level, rec.omit = self.policy.evaluate(rec.effective, rec.authenticated)
        return rec.level

    def started(self, rec: Record) -> None:
        """A long-running response (watch, logs, exec) began: ResponseStarted."""
        self._emit(rec, "RequestReceived")
        self._emit(rec, "ResponseStarted")

    def end(self, rec: Record, stage: str = "ResponseComplete") -> None:
        self._emit(rec, "RequestReceived")
        self._emit(rec, stage)
        if rec.token is not None:
            try:
                _current.reset(rec.token)
            except ValueError:
                _current.set(None)  # closed from another context: just forget it
            rec.token = None

    def _emit(self, rec: Record, stage: str) -> None:
        if stage in rec.sent:
            return
        rec.sent.add(stage)
        if self.level(rec) is Level.NONE or stage in rec.omit:
            return
        self.backend.process(rec.event(stage, datetime.now(UTC)))

    # -- wrappers the apiserver installs around its authenticator and authorizer ---------------------

    def authorizer(self, inner: Authorizer) -> Authorizer:
        return _AuditedAuthorizer(self, inner)

    def authenticator(self, inner: UnionAuthenticator) -> UnionAuthenticator:
        return _AuditedAuthenticator(self, inner)


class _AuditedAuthorizer:
    def __init__(self, auditor: Auditor, inner: Authorizer) -> None:
        self.auditor, self.inner = auditor, inner

    def authorize(self, attrs: Attributes) -> Result:
        r = self.inner.authorize(attrs)
        self.auditor.authorized(attrs, r)
        return r


class _AuditedAuthenticator(UnionAuthenticator):
    """The same authenticator chain; the user it finds is noted on the open record."""

    def __init__(self, auditor: Auditor, inner: UnionAuthenticator) -> None:
        # No super().__init__: every attribute but these two comes from `inner` (__getattr__).
        self.auditor, self.inner = auditor, inner

    async def authenticate(self, creds: Credentials) -> User:
        user = await self.inner.authenticate(creds)
        self.auditor.authenticated(user)
        return user

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # whatever else the chain offers (anonymous, ...)
