"""Safe file names for (service, document type) pairs.

Human names become path components: Unicode normalised (NFC), control characters dropped,
path separators and characters that Windows refuses replaced, no leading dot (so no ``.git``,
no ``..``), no trailing dot or space. Two policies whose names map to the same path (compared
case-insensitively, for clones on macOS and Windows) are a collision: an error, never an
overwrite.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from store.errors import NameCollisionError, UnsafeNameError

_REPLACED = re.compile(r'[/\\<>:"|?*]')
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
MAX_COMPONENT_BYTES = 200


def safe_component(name: str) -> str:
    """One path component for a service or document type name."""
    if not isinstance(name, str):
        raise UnsafeNameError(f"name must be a string, not {type(name).__name__}")
    text = unicodedata.normalize("NFC", name)
    text = re.sub(r"[\t\n\r\f\v]", " ", text)
    text = _CONTROL.sub("", text)
    text = _REPLACED.sub("-", text)
    text = re.sub(r"\s+", " ", text).strip().lstrip(".").rstrip(". ")
    if not text:
        raise UnsafeNameError(f"{name!r} gives an empty file name; choose a name with letters")
    if len(text.encode("utf-8")) > MAX_COMPONENT_BYTES:
        raise UnsafeNameError(
            f"{name[:40]!r}… is too long for a file name "
            f"(over {MAX_COMPONENT_BYTES} bytes); shorten it"
        )
    return text


def policy_path(service: str, type_: str, suffix: str = ".md") -> str:
    """The repository-relative path of a policy's file, e.g. ``WorkOptima/Privacy Policy.md``."""
    return f"{safe_component(service)}/{safe_component(type_)}{suffix}"


def check_collisions(keys: Iterable[tuple[str, str]]) -> None:
    """Raise :class:`NameCollisionError` if two distinct policies share a path."""
    seen: dict[str, tuple[str, str]] = {}
    for key in keys:
        folded = policy_path(*key).casefold()
        other = seen.get(folded)
        if other is not None and other != key:
            raise NameCollisionError(
                f"{key[0]!r} / {key[1]!r} and {other[0]!r} / {other[1]!r} would be stored in "
                f"the same file ({policy_path(*key)!r}); rename one of them"
            )
        seen[folded] = key


def split_policy_path(path: str, suffix: str = ".md") -> tuple[str, str] | None:
    """Inverse of :func:`policy_path` for files in the archive; None for other files."""
    parts = path.split("/")
    if len(parts) != 2 or not parts[1].endswith(suffix):
        return None
    return parts[0], parts[1][: -len(suffix)]


# --------------------------------------------------------------------------- URL path segments

_URL_ESCAPE = re.compile(r"~(.)", re.DOTALL)
_URL_CODES = {"~": "~", "s": "/"}


def url_segment(name: str) -> str:
    """A service or type name as one URL path segment, before percent-encoding.

    "/" cannot travel inside a path segment (servers decode ``%2F`` before routing), so it is
    written ``~s``, and a literal "~" ``~~``: ``A/B Corp`` → ``A~sB Corp``. Every page, feed,
    alert and API link spells names this way; :func:`from_url_segment` reverses it.
    """
    return name.replace("~", "~~").replace("/", "~s")


def from_url_segment(segment: str) -> str:
    """Inverse of :func:`url_segment`; ValueError for a segment no name gives."""

    def replace(match: re.Match[str]) -> str:
        code = _URL_CODES.get(match.group(1))
        if code is None:
            raise ValueError(f"~{match.group(1)} is not an escape in a policy name")
        return code

    if re.search(r"(?<!~)(~~)*~$", segment):
        raise ValueError("a policy name cannot end in a lone ~")
    return _URL_ESCAPE.sub(replace, segment)
