"""Policy names in URL paths: ``/policies/<name:service>/<name:type_>``.

The (service, type) a user writes is the key in URLs too, spelled as
:func:`store.paths.url_segment` says ("/" as ``~s``, "~" as ``~~``), then percent-encoded.
"""

from __future__ import annotations

from werkzeug.routing import BaseConverter, ValidationError

from store.paths import from_url_segment, url_segment


class NameConverter(BaseConverter):
    """One path segment holding a service or document type name."""

    regex = r"[^/]+"

    def to_python(self, value: str) -> str:
        try:
            return from_url_segment(value)
        except ValueError:
            raise ValidationError() from None

    def to_url(self, value: str) -> str:
        return super().to_url(url_segment(value))
