"""The API object model: the kinds as generated protobuf messages (`core`, `apps`, `batch`, `coordination`,
`discovery` under `<group>/v1/`, shared types in `meta/v1/`, the apiserver's gRPC service in `rpc/v1/`), the kind
table (`kinds`), the typed surface over any object (`objects`), and Kubernetes' JSON/YAML codec, patches, selectors,
quantities, timestamps, taints and QoS.
"""
