"""The whoosh engine (the default): :class:`~store.index.whoosh.engine.WhooshIndex`.

Everything that names whoosh's types lives here; the analysis (built on whoosh's language
library, shared by every engine), the query model and the engine-neutral helpers live in
:mod:`store.index`.
"""
