"""The pbctl verbs, one module each."""
