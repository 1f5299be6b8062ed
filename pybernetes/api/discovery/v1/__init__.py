"""The messages generated from protos/pybernetes/api/discovery/v1/ by scripts/genprotos.sh (the *_pb2 modules here;
not edited by hand)."""
