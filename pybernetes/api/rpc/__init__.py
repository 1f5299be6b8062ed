"""Generated messages of the apiserver's gRPC service."""
