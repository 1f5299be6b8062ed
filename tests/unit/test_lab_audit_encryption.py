"""The lab turns on encryption at rest and the audit log: `write_credentials` writes an EncryptionConfiguration
with a random key (0600, under the apiserver's pki/, kept across runs) and the lab's audit policy, and the
apiserver's command line names both and an audit log under the lab directory."""

from __future__ import annotations

from pathlib import Path

from lab import commands, control_plane
from lab.topology import Plan
from services.apiserver.audit import policy
from services.apiserver.main import parse_args
from services.apiserver.storage import encryption


def test_lab_writes_and_passes_encryption_and_audit_files(tmp_path: Path) -> None:
    plan = Plan(dir=tmp_path)
    control_plane.write_credentials(plan)
    enc = commands.encryption_config(plan)
    assert enc.parent == tmp_path / "control-plane" / "apiserver" / "pki" and enc.stat().st_mode & 0o777 == 0o600
    t = encryption.load(enc)["secrets"]
    assert t.to_storage(b"/registry/secrets/a/b", b"x").startswith(b"k8s:enc:aescbc:v1:key1:")
    key = enc.read_text()
    control_plane.write_credentials(plan)  # a second `lab up` keeps the key its data was written with
    assert enc.read_text() == key
    assert policy.load(commands.audit_policy(plan)).rules
    argv = commands.apiserver_argv(plan)
    cfg = parse_args(argv[next(i for i, a in enumerate(argv) if a.startswith("--")):])
    assert cfg.encryption_provider_config == enc
    assert cfg.audit_policy_file == commands.audit_policy(plan)
    assert Path(cfg.audit_log_path) == tmp_path / "control-plane" / "audit" / "audit.log"
