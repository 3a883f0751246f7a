"""Researcher access: dataset exports, Open Terms Archive interop, and integrity checks.

- :mod:`archive.research.export`: the archive (or the archive as it stood on a date) as JSON
  Lines or CSV, streamed as bytes; :mod:`archive.research.dataset`: the zip dataset;
  :mod:`archive.research.selection`: which versions an export holds.
- :mod:`archive.research.ota_repo` and :mod:`archive.research.ota_import`: import an Open
  Terms Archive *versions* git repository by walking its history.
- :mod:`archive.research.verify`: ``git fsck`` of both repositories, snapshot links, index.
"""
