"""Persistence: git repositories of versions and snapshots, the search index, operational state.

The lowest layer: nothing here imports from ``archive`` or ``webui``.
"""
