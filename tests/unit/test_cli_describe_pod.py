"""pbctl describe pod's Volumes section against kubectl's own output for the same pod (kubectl v1.33's
printProjectedVolumeSource and friends)."""

from __future__ import annotations

from pbctl.describers.pod import describe_pod, describe_volumes
from pbctl.describers.writer import Writer
from pybernetes.api.core.v1 import core_pb2 as core
from services.apiserver.serviceaccount import volume


def test_the_service_account_token_volume_is_described_as_kubectl_does() -> None:
    pod = core.Pod()
    pod.metadata.name, pod.metadata.namespace = "web", "default"
    pod.spec.containers.add(name="nginx", image="nginx:1.15.4")
    name = volume.add_token_volume(pod, core.ServiceAccount())
    w = Writer()
    describe_pod(w, pod, 0.0)
    text = w.text()
    section = text[text.index("\nVolumes:"):text.index("QoS Class:")].strip("\n").splitlines()
    # `kubectl describe pod web` of the same pod stored by pb-apiserver (tests/integration/test_rest_kubectl.py),
    # where the QoS Class line below it sets the column.
    assert section == ["Volumes:",
                       f"  {name}:",
                       "    Type:                    Projected (a volume that contains injected data from multiple "
                       "sources)",
                       "    TokenExpirationSeconds:  3607",
                       "    ConfigMapName:           kube-root-ca.crt",
                       "    Optional:                false",
                       "    DownwardAPI:             true"]
    assert f"/var/run/secrets/kubernetes.io/serviceaccount from {name} (ro)" in text


def test_projected_secrets_and_no_volumes() -> None:
    v = core.Volume(name="creds")
    v.projected.sources.add().secret.CopyFrom(core.SecretProjection(name="db", optional=True))
    w = Writer()
    describe_volumes(w, [v])
    assert [line.split() for line in w.text().splitlines()] == [
        ["Volumes:"], ["creds:"], ["Type:", "Projected", "(a", "volume", "that", "contains", "injected", "data",
                                   "from", "multiple", "sources)"],
        ["SecretName:", "db"], ["Optional:", "true"]]
    w = Writer()
    describe_volumes(w, [])
    assert w.text().split() == ["Volumes:", "<none>"]
