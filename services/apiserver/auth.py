"""Authentication (bearer tokens, as kube-apiserver's --token-auth-file) and authorization.

Tokens come from a CSV file `token,user,uid,"group1,group2"`. On first start the apiserver creates
one for `system:admin` in group `system:masters` and writes admin.conf with it (mode 0600), as k3s does.
Authorization: authenticated users are allowed (kube-apiserver's AlwaysAllow mode); anonymous requests
are refused. The Authorizer protocol is where RBAC would slot in.
"""

from __future__ import annotations

import csv
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pybernetes import errors

ADMIN_GROUP = "system:masters"  # Kubernetes' group of cluster admins (admin.conf's user)


@dataclass(frozen=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()


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

    def authenticate(self, header: str | None) -> User:
        if not header or not header.startswith("Bearer "):
            raise errors.Unauthorized("Unauthorized: a bearer token is required (see admin.conf)")
        user = self.tokens.get(header[7:].strip())
        if user is None:
            raise errors.Unauthorized("Unauthorized: unknown token")
        return user


class AlwaysAllowAuthorizer:
    def authorize(self, user: User, verb: str, resource: str, namespace: str) -> None:
        return None


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
