"""The tantivy engine behind :class:`store.index.base.SearchIndex` (PyPI ``tantivy``)."""

from store.index.tantivy.engine import TantivyIndex

__all__ = ["TantivyIndex"]
