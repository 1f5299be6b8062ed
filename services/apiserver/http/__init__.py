"""The apiserver's Kubernetes front door: Kubernetes' own HTTP/JSON REST API over HTTPS (aiohttp).

Every request goes through the same `rest.Rest` and authenticator/authorizer as the gRPC API: this package
only translates URLs, query parameters and JSON to and from them. Modules: app (the server, routing,
authentication), discovery (/api, /apis, /version, aggregated discovery, the OpenAPI stub), resources (the
verbs), watch (chunked JSON event streams), status (errors as meta.v1 Status), tables (server-side printing).
"""
