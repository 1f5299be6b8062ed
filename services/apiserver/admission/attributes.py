"""What an admission plugin sees of a request (Kubernetes' admission.Attributes) and the plugin base class.

`Attributes` names the operation (CREATE, UPDATE, DELETE, CONNECT), the resource and subresource, the object
after defaulting (None on delete), the stored object (None on create), the requesting user (None: the
apiserver itself) and whether the write is a dry run. `Plugin` has two hooks, as Kubernetes' mutation and
validation interfaces: `admit` may change `a.obj`, `validate` may only refuse. Both refuse by raising an
ApiError; `forbidden(a, msg)` words it as kube-apiserver does: `pods "x" is forbidden: <msg>`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import Message

from pybernetes import errors
from pybernetes.api.kinds import ResourceInfo

from ..auth import User

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"


@dataclass
class Attributes:
    operation: str
    resource: ResourceInfo
    namespace: str
    name: str
    obj: Message | None = None
    old: Message | None = None
    subresource: str = ""
    user: User | None = None
    dry_run: bool = False
    # Warning headers for the client (PodSecurity's warn mode); plugins append, the front end sends them.
    warnings: list[str] = field(default_factory=list)

    @property
    def plural(self) -> str:
        return self.resource.plural


def forbidden(a: Attributes, message: str) -> errors.Forbidden:
    """kube-apiserver's admission.NewForbidden: `<resource> "<name>" is forbidden: <message>`."""
    res = a.resource.group_resource
    head = f'{res} "{a.name}"' if a.name else res
    return errors.Forbidden(f"{head} is forbidden: {message}", kind=a.resource.plural, name=a.name)


class Plugin:
    """One admission plugin. Subclasses set `name` and override `admit` (mutating) and/or `validate`."""

    name = ""
    mutating = False
    validating = False

    async def admit(self, a: Attributes) -> None:
        return None

    async def validate(self, a: Attributes) -> None:
        return None
