"""serviceaccounts/token (create): a TokenRequest in, the same TokenRequest out with status.token, as
Kubernetes' pkg/registry/core/serviceaccount/storage/token.go.

spec.expirationSeconds defaults to 3600 and may not be under 600 s (10 minutes) nor over 2^32; spec.audiences
defaults to the apiserver's --api-audiences; spec.boundObjectRef may bind the token to a Pod (apiVersion v1,
a name, optionally its uid, which must match) running as this ServiceAccount. Nothing is stored.
"""

from __future__ import annotations

from pybernetes import errors
from pybernetes.api import kinds
from pybernetes.api.authentication.v1 import authentication_pb2 as authn
from pybernetes.api.core.v1 import core_pb2 as core
from pybernetes.api.times import now

from . import claims as cl
from .tokens import Lookup, TokenIssuer

API_VERSION, KIND = "authentication.k8s.io/v1", "TokenRequest"
DEFAULT_EXPIRATION = 3600
MIN_EXPIRATION = 600
MAX_EXPIRATION = 1 << 32


def _invalid(name: str, path: str, detail: str) -> errors.Invalid:
    return errors.Invalid(f'TokenRequest.authentication.k8s.io "{name}" is invalid: {path}: {detail}', kind=KIND,
                          name=name, causes=[errors.FieldError(path, detail)])


def decode(raw: bytes) -> authn.TokenRequest:
    try:
        return authn.TokenRequest.FromString(raw)
    except Exception as e:  # protobuf's DecodeError
        raise errors.BadRequest(f"cannot decode TokenRequest: {e}") from None


class TokenRequests:
    def __init__(self, issuer: TokenIssuer, lookup: Lookup, audiences: tuple[str, ...]) -> None:
        self.issuer = issuer
        self.lookup = lookup
        self.audiences = audiences

    async def create(self, namespace: str, name: str, req: authn.TokenRequest) -> authn.TokenRequest:
        if req.metadata.name and req.metadata.name != name:
            raise errors.BadRequest(f"the name of the TokenRequest ({req.metadata.name}) does not match the "
                                    f"ServiceAccount on the URL ({name})")
        spec = req.spec
        if not spec.HasField("expiration_seconds"):
            spec.expiration_seconds = DEFAULT_EXPIRATION
        if spec.expiration_seconds < MIN_EXPIRATION:
            raise _invalid(name, "spec.expirationSeconds", f"Invalid value: {spec.expiration_seconds}: may not "
                           "specify a duration less than 10 minutes")
        if spec.expiration_seconds > MAX_EXPIRATION:
            raise _invalid(name, "spec.expirationSeconds", f"Invalid value: {spec.expiration_seconds}: may not "
                           "specify a duration larger than 2^32 seconds")
        if not spec.audiences:
            spec.audiences.extend(self.audiences)
        sa = await self.lookup(kinds.for_class(core.ServiceAccount), namespace, name)
        if not isinstance(sa, core.ServiceAccount):
            raise errors.NotFound(f'serviceaccounts "{name}" not found', kind="ServiceAccount", name=name)
        pod_ref = await self._bound_pod(namespace, name, spec.bound_object_ref) \
            if spec.HasField("bound_object_ref") else None
        token, exp = self.issuer.issue(namespace, cl.Ref(name, sa.metadata.uid), list(spec.audiences),
                                       int(spec.expiration_seconds), pod_ref)
        out = authn.TokenRequest()
        out.metadata.name, out.metadata.namespace = name, namespace
        out.metadata.creation_timestamp.CopyFrom(now())
        out.spec.CopyFrom(spec)
        out.status.token = token
        out.status.expiration_timestamp.seconds = exp
        return out

    async def _bound_pod(self, namespace: str, sa_name: str, ref: authn.BoundObjectReference) -> cl.Ref:
        if ref.kind != "Pod":
            raise errors.BadRequest(f"cannot bind token to object of type {ref.api_version or 'v1'}, "
                                    f"Kind={ref.kind} (only Pod is supported)")
        if ref.api_version not in ("", "v1"):
            raise errors.BadRequest(f"cannot bind token to object of type {ref.api_version}, Kind=Pod")
        if not ref.name:
            raise _invalid(sa_name, "spec.boundObjectRef.name", "Required value")
        pod = await self.lookup(kinds.for_class(core.Pod), namespace, ref.name)
        if not isinstance(pod, core.Pod):
            raise errors.NotFound(f'pods "{ref.name}" not found', kind="Pod", name=ref.name)
        if ref.uid and ref.uid != pod.metadata.uid:
            raise errors.Conflict(f"the UID in the bound object reference ({ref.uid}) does not match the UID in "
                                  "record. The object might have been deleted and then recreated")
        running_as = pod.spec.service_account_name or "default"
        if running_as != sa_name:
            raise errors.BadRequest(f'cannot bind token for serviceaccount "{sa_name}" to pod running with '
                                    f'different serviceaccount name "{running_as}"')
        return cl.Ref(pod.metadata.name, pod.metadata.uid)
