"""CRI (runtime.v1) client for containerd: generated messages, a typed async client, its errors."""
