"""describe's reports, one module per kind group (kubectl's describers); pbctl.verbs.describe picks one."""
