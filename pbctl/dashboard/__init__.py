"""`pbctl dashboard`: the cluster drawn as the architecture diagram, live from watches.

`views` turns API objects into the small JSON shapes the page draws; `model` keeps them, fed by informer
events, and turns each change into a message (upsert, delete, timeline entry); `server` is the aiohttp app
that serves the page from `static/` and streams those messages as server-sent events; `health` probes
the apiserver's /readyz. The verb itself is `pbctl.verbs.dashboard`.
"""
