"""Authentication: who a request comes from (`User`), from what it presents (`Credentials`: the Authorization
header, a verified client certificate), through a chain of authenticators (kube-apiserver's union: the first
that recognises the credentials decides; none is 401). A request with no credentials at all is refused, or with
--anonymous-auth=true is system:anonymous in system:unauthenticated (Kubernetes' anonymous authenticator; a
token or certificate nobody recognises stays 401).

X509Authenticator as Kubernetes' x509 authenticator: a client certificate the TLS layer verified against the
cluster CA names the user in its CN and the groups in its O attributes (kubernetes-admin in system:masters,
system:node:<name> in system:nodes). REST asks for a certificate optionally and checks it first, as
kube-apiserver's union does; gRPC requires one of every connection (see pybernetes.rpc), so there a bearer
token sent with a call names the caller (`grpc_authenticator`), and the certificate otherwise.

Bearer tokens as kube-apiserver's --token-auth-file: a CSV file `token,user,uid,"group1,group2"`. On first
start the apiserver creates one for `system:admin` in group `system:masters` and writes admin.conf with it
(mode 0600), as k3s does. Authorization lives in authz.py.
"""

from __future__ import annotations

import csv
import logging
import os
import secrets
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pybernetes import errors, tls

log = logging.getLogger("pybernetes.apiserver.auth")

ADMIN_GROUP = "system:masters"  # Kubernetes' group of cluster admins (admin.conf's user)
ANONYMOUS_USER = "system:anonymous"  # who a request without credentials is, with --anonymous-auth=true
UNAUTHENTICATED_GROUP = "system:unauthenticated"


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Credentials:
    """What a request presents. `client_cert` (DER) was already verified against the client CA by the TLS layer."""
    authorization: str | None = None
    client_cert: bytes | None = None

    @property
    def bearer(self) -> str | None:
        """The token of `Authorization: Bearer <token>`; the scheme is case-insensitive, as kube-apiserver reads
        it (the official Python client's in-cluster config sends `bearer`)."""
        a = self.authorization
        return a[7:].strip() or None if a and a[:7].lower() == "bearer " else None


class Authenticator(Protocol):
    async def authenticate(self, creds: Credentials) -> User | None:
        """The user the credentials name, None when they are not this authenticator's kind; raise
        Unauthorized when they are its kind but invalid (a wrong or expired token)."""
        ...


class UnionAuthenticator:
    def __init__(self, authenticators: Sequence[Authenticator], *, anonymous: bool = False) -> None:
        self.authenticators = list(authenticators)
        self.anonymous = anonymous

    async def authenticate(self, creds: Credentials) -> User:
        for a in self.authenticators:
            user = await a.authenticate(creds)
            if user is not None:
                log.debug("authenticated user=%s groups=%s by=%s", user.name, ",".join(user.groups),
                          type(a).__name__)
                return user
        if creds.authorization is None and creds.client_cert is None:
            if self.anonymous:
                return User(ANONYMOUS_USER, "", (UNAUTHENTICATED_GROUP,))
            raise errors.Unauthorized("Unauthorized: credentials are required (a client certificate or a bearer "
                                      "token, see admin.conf)")
        raise errors.Unauthorized("Unauthorized: unknown credentials")


class X509Authenticator:
    """User = CN, groups = O of a client certificate already verified against the client CA by the handshake."""

    async def authenticate(self, creds: Credentials) -> User | None:
        if creds.client_cert is None:
            return None
        name, groups = tls.identity(creds.client_cert)
        if not name:
            raise errors.Unauthorized("Unauthorized: the client certificate has no common name (CN names the user)")
        return User(name, "", groups)


def rest_authenticator(bearer: Sequence[Authenticator], *, anonymous: bool = False) -> UnionAuthenticator:
    """REST's chain, Kubernetes' order: the client certificate, then the bearer token authenticators."""
    return UnionAuthenticator([X509Authenticator(), *bearer], anonymous=anonymous)


class BearerFirstAuthenticator(UnionAuthenticator):
    """gRPC's chain: every connection carries a certificate (required at the handshake), so a bearer token sent
    with a call is the more specific credential and names the caller; without one, the certificate does. A
    token nobody recognises is refused (401), never replaced by the connection's certificate."""

    async def authenticate(self, creds: Credentials) -> User:
        if creds.authorization is not None:
            return await super().authenticate(Credentials(authorization=creds.authorization))
        return await super().authenticate(creds)


def grpc_authenticator(bearer: Sequence[Authenticator], *, anonymous: bool = False) -> UnionAuthenticator:
    return BearerFirstAuthenticator([*bearer, X509Authenticator()], anonymous=anonymous)


class TokenAuthenticator:
    def __init__(self, tokens: dict[str, User]) -> None:
        self.tokens = tokens

    @classmethod
    def from_file(cls, path: Path) -> TokenAuthenticator:
        tokens: dict[str, User] = {}
        with path.open(newline="") as f:
            for row in csv.reader(f):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 2:
                    raise errors.ConfigError(f"{path}: each line needs at least token,user")
                groups = tuple(g for g in (row[3].split(",") if len(row) > 3 else []) if g)
                tokens[row[0].strip()] = User(row[1].strip(), row[2].strip() if len(row) > 2 else "", groups)
        return cls(tokens)

    async def authenticate(self, creds: Credentials) -> User | None:
        token = creds.bearer
        return self.tokens.get(token) if token else None


def ensure_admin_token(path: Path) -> str:
    """The admin token from the tokens file, creating the file (0600) with one if needed."""
    if path.exists():
        for tok, user in TokenAuthenticator.from_file(path).tokens.items():
            if ADMIN_GROUP in user.groups:
                return tok
    token = secrets.token_hex(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(f'{token},system:admin,admin,"system:masters"\n')
    os.chmod(path, 0o600)
    return token


# The user of the gRPC request being served, set by the gRPC front end (server.py) once it is authenticated (and
# impersonation applied), for its servicer methods to pass to Rest. The REST front end keeps its user on the
# aiohttp request instead (http/resources.user_of).
REQUEST_USER: ContextVar[User | None] = ContextVar("request_user", default=None)
