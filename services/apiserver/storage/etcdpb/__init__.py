"""Generated etcd gRPC subset (mvccpb, etcdserverpb); regenerate with scripts/genprotos.sh."""
