"""Fetch workers on a task queue (Redis): the pieces shared by ``run --queue`` and ``worker``."""
