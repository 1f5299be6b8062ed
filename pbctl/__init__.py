"""pbctl: the kubectl-like command line client (console script `pbctl = pbctl.entry:main`).

A client of the library (`pybernetes`), like the components, and imported by none of them.
`entry` is the console script (a plugin is exec'd before the rest loads), `main` parses and dispatches;
`verbs/` holds one module per subcommand (see `verb.Verb`); `common`, `manifests`, `printers`, `describers/` and
`timeline` are what the verbs share; `plugins` finds the `pbctl-NAME` executables (the lab's `pbctl-lab`) run for
a name that is not a verb.
"""
