"""Strategies of the batch/v1 kinds (Job, CronJob), one module per kind."""
