"""The audit log (kube-apiserver's --audit-log-path, --audit-policy-file): policy.py decides levels,
record.py renders audit.k8s.io/v1 Events, backend.py writes them, auditor.py follows each request,
frontends.py hooks it into the REST and gRPC servers."""
