"""Configuration: ``config.toml`` read once into frozen dataclasses and passed down.

Every setting is declared once, as a dataclass field with a default and a help text
(``metadata={"help": ...}``), and every table of the file is listed in :data:`TABLES`; the loader
checks types and rejects unknown keys with a message that names the file, the table and the fix,
and ``docs/configuration.md`` is generated from the same declarations
(``archive.config.reference``).
This is also the one place that reads the environment: the config file's path, the data dir
override and the secrets (:func:`load_config`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import typing
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archive.errors import ConfigError

DEFAULT_CONFIG = "config.toml"
ENV_CONFIG = "POLICY_ARCHIVE_CONFIG"
ENV_DATA_DIR = "POLICY_ARCHIVE_DATA_DIR"
ENV_SECRET_KEY = "POLICY_ARCHIVE_SECRET_KEY"  # noqa: S105 - a variable name
ENV_SMTP_PASSWORD = "POLICY_ARCHIVE_SMTP_PASSWORD"  # noqa: S105 - a variable name
MANAGED_DECLARATIONS = "declarations"
"""The admin UI's declarations repository inside data_dir when ``declarations`` is not set."""

Parse = Callable[[Any, str], Any]
"""A field's own reader: ``(toml_value, where) -> value``. It raises :class:`ValueError` with a
message that reads after the key's name ("must be ...") or a :class:`ConfigError`."""


def _help(
    text: str,
    default: Any = dataclasses.MISSING,
    *,
    parse: Parse | None = None,
    kind: str | None = None,
    env: str | None = None,
    **kw: Any,
) -> Any:
    """A setting: its help text and default, and optionally its own reader (``parse``), the
    type shown in the reference (``kind``, for fields whose annotation does not say it) and an
    environment variable read when the value is empty (``env``, for secrets)."""
    metadata = {"help": text, "parse": parse, "kind": kind, "env": env}
    if default is dataclasses.MISSING and "default_factory" not in kw:
        return field(metadata=metadata, **kw)
    return field(default=default, metadata=metadata, **kw)


# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class FetchSettings:
    """How pages are fetched: identity, time and size limits, politeness, the SSRF guard."""

    user_agent: str = _help(
        "User-Agent sent with every request; include a contact URL so site owners can reach you.",
        "PolicyArchive/0.1 (+https://github.com/policy-archive/policy-archive)",
    )
    timeout: float = _help("Seconds to wait for a connection or for the next bytes.", 30.0)
    max_fetch_seconds: float = _help(
        "Total time one fetch may take: DNS, connect, headers, every redirect and the whole "
        "body (or, for js pages, navigation and settling). A slower server is a failure.",
        120.0,
    )
    max_body_bytes: int = _help(
        "Largest body accepted (after decompression), in bytes (at least 1024).", 20_000_000
    )
    max_redirects: int = _help("Redirects followed before giving up.", 10)
    per_host_delay: float = _help("Seconds between two requests to the same host.", 2.0)
    concurrency: int = _help("Documents fetched at the same time (at least 1).", 4)
    allow_private_addresses: bool = _help(
        "Allow fetching loopback/private/link-local addresses. Off in production (SSRF guard); "
        "tests and local demos switch it on.",
        False,
    )
    browser_path: str = _help(
        "Chromium executable for pages marked js; empty = look for chromium on PATH.", ""
    )
    browser_timeout: float = _help("Seconds a JavaScript-rendered page may take to load.", 45.0)
    min_text_chars: int = _help("An extraction shorter than this is an error, not a version.", 200)
    suspect_ratio: float = _help(
        "A new text shorter than this fraction of the last version is held back until the "
        "next check confirms it.",
        0.33,
    )


@dataclass(frozen=True)
class ScheduleSettings:
    """When policies are checked, retried and alerted on, and how the repositories are kept."""

    interval: timedelta = _help("Default time between two checks of a policy.", timedelta(hours=6))
    jitter: timedelta = _help(
        "Random delay added to each run, to spread load.", timedelta(minutes=5)
    )
    failure_alert_after: int = _help("Consecutive failures after which the operator is alerted.", 3)
    retry_backoff: timedelta = _help(
        "First retry delay after a transient failure (doubles each time, capped at interval).",
        timedelta(minutes=10),
    )
    gc_interval: timedelta = _help(
        "Time between two `git gc` runs of the repositories.", timedelta(days=1)
    )
    index_batch_size: int = _help(
        "`run`: changes collected before the search index is updated in one commit.", 200
    )
    index_batch_seconds: timedelta = _help(
        "`run`: longest time a recorded change waits before it reaches the search index.",
        timedelta(seconds=30),
    )


def _positive_hours(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be a number of hours greater than zero")
    return float(value)


@dataclass(frozen=True)
class WebSettings:
    """The web UI and its server (`policy-archive serve`)."""

    host: str = _help("Address the web UI listens on.", "127.0.0.1")
    port: int = _help("Port the web UI listens on.", 8000)
    base_url: str = _help(
        "Public URL of the web UI, used in emails, feeds and webhooks. Empty: the address "
        "being served (`http://<host>:<port>`, as given to `run`/`serve`).",
        "",
    )
    secret_key: str = _help(
        "Secret used to sign tokens (unsubscribe links). Empty: read from "
        "$POLICY_ARCHIVE_SECRET_KEY, else generated once and stored in the data dir.",
        "",
        env=ENV_SECRET_KEY,
        repr=False,
    )
    threads: int = _help("Worker threads of the WSGI server.", 8)
    connection_limit: int = _help("Open connections the server holds (slow clients).", 1000)
    expose_snapshots: bool = _help(
        "Also serve the raw snapshots repository at /snapshots.git.", False
    )
    search_readers: int = _help(
        "Searchers shared by the web server's threads (each holds the index's catalog; "
        "2 is enough on 2 cores). At least 1.",
        2,
    )
    private: bool = _help(
        "Require a login (or an API token) for every page, the API and git clone, not only "
        "for /admin/. Login, static files and the signed links in alert emails stay open.",
        False,
    )
    session_hours: float = _help(
        "Hours a login lasts; then the user logs in again.",
        12.0,
        parse=_positive_hours,
        kind="number",
    )

    def __post_init__(self) -> None:
        if not self.base_url:  # the default: links point at the address being served
            object.__setattr__(self, "base_url", served_url(self.host, self.port))

    def served_at(self, host: str, port: int) -> WebSettings:
        """These settings served at ``host``:``port`` (``run``/``serve --host/--port``).

        A ``base_url`` that is the served address (the default) follows the new address; a
        ``base_url`` naming another address (a proxy, a public name) is kept."""
        derived = self.base_url.rstrip("/") == served_url(self.host, self.port)
        base_url = "" if derived else self.base_url
        return dataclasses.replace(self, host=host, port=port, base_url=base_url)


def served_url(host: str, port: int) -> str:
    """``http://host:port`` as a link (an IPv6 address in brackets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server that sends email alerts."""

    host: str = _help("SMTP server; empty disables email alerts.", "")
    port: int = _help("SMTP port.", 587)
    security: str = _help("'starttls', 'ssl' or 'none'.", "starttls")
    user: str = _help("SMTP user name; empty for no login.", "")
    password: str = _help(
        "SMTP password; empty: read from $POLICY_ARCHIVE_SMTP_PASSWORD.",
        "",
        env=ENV_SMTP_PASSWORD,
        repr=False,
    )
    sender: str = _help("From address of alert emails.", "policy-archive@localhost")
    timeout: float = _help("Seconds to wait for the SMTP server.", 30.0)


CHANNELS = ("email", "webhook", "apprise")


def _channel(value: Any, where: str) -> str:
    if value not in CHANNELS:
        raise ValueError(f"must be 'email', 'webhook' or 'apprise', not {value!r}")
    return str(value)


@dataclass(frozen=True)
class AlertSettings:
    """One ``[[alert]]`` table: who is told about which changes, and how."""

    channel: str = _help("'email', 'webhook' or 'apprise'.", parse=_channel, kind="string")
    target: str = _help("Email address, webhook URL or Apprise URL.")
    service: str = _help("Only changes to this service (empty: any).", "")
    type: str = _help("Only changes to this document type (empty: any).", "")
    query: str = _help("A saved search: alert when a policy starts or stops matching it.", "")
    secret: str = _help("Webhook signing secret (whsec_... or any string).", "")
    digest: bool = _help("Email: one digest a day instead of one email per change.", False)
    first_records: bool = _help(
        "Also alert when a policy is recorded for the first time (off: only changes).", False
    )


@dataclass(frozen=True)
class NotifySettings:
    """How alerts are delivered: webhook limits, retries, which Apprise schemes are allowed."""

    allow_private_addresses: bool = _help(
        "Allow webhooks to loopback/private addresses (tests and local receivers only).", False
    )
    webhook_timeout: float = _help("Seconds a webhook receiver may take to answer.", 15.0)
    max_attempts: int = _help("Delivery attempts before an alert is reported as failed.", 8)
    retry_base: float = _help(
        "First retry delay in seconds (exponential backoff with jitter).", 30.0
    )
    allow_unguarded_apprise: bool = _help(
        "Allow Apprise schemes whose requests cannot go through the guarded HTTP client (SSRF "
        "guard, pinning, caps). Off: such URLs are refused.",
        False,
    )


@dataclass(frozen=True)
class ExportSettings:
    """Research exports (`policy-archive export`)."""

    licence: str = _help(
        "Licence statement written into exported datasets.",
        "Licence: to be decided by the archive's operator.",
    )


def _engine(value: Any, where: str) -> str:
    from store.index import ENGINES

    if value not in ENGINES:
        choices = " or ".join(repr(e) for e in ENGINES)
        raise ValueError(f"must be {choices}, not {value!r}")
    return str(value)


_DATABASE_SCHEMES = ("postgresql", "postgres")


def database_url(value: Any, where: str) -> str:
    """A PostgreSQL connection URL (``postgresql://user@host:port/db``), or "" for none."""
    return _service_url(value, _DATABASE_SCHEMES, "postgresql://user@127.0.0.1:5432/archive")


def _service_url(value: Any, schemes: tuple[str, ...], example: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a URL string such as {example!r}")
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"must be a URL such as {example!r}, not {value!r}")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise ValueError(f"has a bad port: {value!r}") from None
    return value


def _database_urls(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise ValueError("must be a list of postgresql:// URLs")
    return tuple(database_url(v, where) for v in items if v)


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the shared state lives: policy state, subscriptions, the alert outbox and its
    delivery log, accounts. Empty: data_dir/state.sqlite (embedded, one machine)."""

    url: str = _help(
        "PostgreSQL URL (postgresql://user:password@host:port/dbname) for state shared by "
        "several machines; empty keeps state in data_dir/state.sqlite. Move existing state "
        "over with `policy-archive migrate-state --to URL`.",
        "",
        parse=database_url,
        kind="string",
    )


@dataclass(frozen=True)
class SearchSettings:
    """The search index (in data_dir/index, or in PostgreSQL)."""

    engine: str = _help(
        "'whoosh' (pure Python, the default), 'tantivy' (faster; PyPI tantivy) or "
        "'postgresql' (shared by several machines; uses [database] url unless [search] url "
        "is set). Changing it rebuilds the index from git at the next sync.",
        "whoosh",
        parse=_engine,
        kind="string",
    )
    url: str = _help(
        "PostgreSQL URL of the search index when engine = 'postgresql' and the index lives "
        "apart from the state; empty: [database] url.",
        "",
        parse=database_url,
        kind="string",
    )
    replicas: tuple[str, ...] = _help(
        "PostgreSQL URLs of read replicas (streaming standbys) that searches read from, in "
        "turn; a replica that fails is skipped and searches fall back to the primary.",
        (),
        parse=_database_urls,
        kind="list of URLs",
    )


@dataclass(frozen=True)
class RangeSelector:
    """An Open Terms Archive range selector: the content between two CSS-selected points."""

    start_before: str | None = None
    start_after: str | None = None
    end_before: str | None = None
    end_after: str | None = None


Selector = str | RangeSelector


@dataclass(frozen=True)
class Source:
    """One fetched page of a document; a document may combine several, in order."""

    url: str
    select: tuple[Selector, ...] = ()
    remove: tuple[Selector, ...] = ()
    js: bool = False
    filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyConfig:
    service: str
    type: str
    sources: tuple[Source, ...]
    language: str | None = None
    interval: timedelta | None = None
    origin: str = "config.toml"
    ignore: tuple[str, ...] = ()  # regular expressions: spans not compared (still stored)

    @property
    def key(self) -> tuple[str, str]:
        return (self.service, self.type)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(s.url for s in self.sources)

    @property
    def js(self) -> bool:
        return any(s.js for s in self.sources)

    @property
    def label(self) -> str:
        return f"{self.service} {self.type}"


# --------------------------------------------------------------------------- policy keys

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)?\s*$")
_UNITS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


def parse_duration(value: Any) -> timedelta:
    """'30m', '6h', '1d', '90s' or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as '6h', '30m' or '1d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError(f"{value!r} is not a duration: use e.g. '6h', '30m', '1d' or seconds")
    return timedelta(seconds=seconds)


def check_url(url: Any) -> str:
    if not isinstance(url, str):
        raise ValueError(f"{url!r} is not a URL")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL with a host")
    if any(ord(c) < 33 for c in url.strip()):
        raise ValueError(f"{url!r} contains spaces or control characters")
    return url.strip()


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    name = unicodedata.normalize("NFC", value).strip()
    if _CONTROL.search(name):
        cleaned = " ".join(_CONTROL.sub(" ", name).split())
        raise ValueError(
            f"{value!r} contains control or invisible characters, which cannot be told apart "
            f"in a list or a file name; use {cleaned!r}"
        )
    return name


def policy_name(value: str, where: str, key: str) -> str:
    """A service or document type name as the key everywhere (state, index, alerts, URLs):
    trimmed and in Unicode NFC, so ``Ünïcode`` typed either way is one policy. Names with
    invisible characters are refused, with the name to use instead."""
    try:
        return _name(value, where)
    except ValueError as exc:
        raise ConfigError(f"{where}: {key} {exc}") from None


def _url(value: Any, where: str) -> str:
    try:
        return check_url(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _urls(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("must be a non-empty list of URLs")
    return tuple(_url(u, where) for u in value)


def parse_selector(value: Any, where: str) -> Selector:
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError(f"{where}: an empty CSS selector matches nothing; remove it")
        return value
    if isinstance(value, Mapping):
        allowed = {"startBefore", "startAfter", "endBefore", "endAfter"}
        unknown = set(value) - allowed
        if unknown:
            raise ConfigError(
                f"{where}: range selector has unknown key(s) {', '.join(sorted(unknown))}; "
                "use startBefore|startAfter and endBefore|endAfter"
            )
        starts = [k for k in ("startBefore", "startAfter") if k in value]
        ends = [k for k in ("endBefore", "endAfter") if k in value]
        if len(starts) != 1 or len(ends) != 1:
            raise ConfigError(
                f"{where}: a range selector needs exactly one of startBefore/startAfter and "
                "one of endBefore/endAfter"
            )
        return RangeSelector(
            start_before=value.get("startBefore"),
            start_after=value.get("startAfter"),
            end_before=value.get("endBefore"),
            end_after=value.get("endAfter"),
        )
    raise ConfigError(f"{where}: {value!r} is not a CSS selector or a range selector")


def parse_selectors(value: Any, where: str) -> tuple[Selector, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    return tuple(parse_selector(v, where) for v in items)


def _language(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise ValueError(f"{value!r} should be a code such as 'en' or 'et'")
    return value


def _policy_interval(value: Any, where: str) -> timedelta:
    interval = parse_duration(value)
    if interval.total_seconds() < 60:
        raise ValueError(f"{value!r} is under a minute; use e.g. '30m' or '6h'")
    return interval


def _filter_names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        raise ValueError("must be a list of names")
    return tuple(value)


def parse_ignore(value: Any, where: str) -> tuple[str, ...]:
    """``ignore = ["regex", ...]``: spans of text that do not count when comparing versions."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v for v in items):
        raise ConfigError(f"{where}: ignore must be a list of regular expressions (strings)")
    for pattern in items:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}: ignore pattern {pattern!r} is not valid: {exc}") from None
        if compiled.match(""):
            raise ConfigError(
                f"{where}: ignore pattern {pattern!r} matches the empty string; "
                "use + instead of * so it matches something"
            )
    return tuple(items)


@dataclass(frozen=True)
class PolicySettings:
    """One ``[[policy]]`` table: a document to track. ``service`` and ``type`` name it (and its
    file, ``data/archive/<service>/<type>.md``); give ``url`` or ``urls``, not both."""

    service: str = _help(
        "Service (company or product) the document belongs to, e.g. 'GitHub'. Trimmed and put "
        "in Unicode NFC; names with control or invisible characters are refused.",
        parse=_name,
        kind="string",
    )
    type: str = _help(
        "Document type, e.g. 'Privacy Policy' or 'Terms of Service'; normalised like service.",
        parse=_name,
        kind="string",
    )
    url: str | None = _help(
        "Address of the document: an http(s) URL with a host.", None, parse=_url, kind="URL"
    )
    urls: tuple[str, ...] = _help(
        "Several pages that together make the document, fetched and combined in order "
        "(instead of url).",
        (),
        parse=_urls,
        kind="list of URLs",
    )
    select: tuple[Selector, ...] = _help(
        "CSS selector(s) of the text to keep, or Open Terms Archive range selectors "
        '{startBefore|startAfter = "css", endBefore|endAfter = "css"}. Left out: the main content '
        "is found automatically.",
        (),
        parse=parse_selectors,
        kind="selector or list of selectors",
    )
    remove: tuple[Selector, ...] = _help(
        "CSS or range selector(s) of parts removed before extraction (banners, menus).",
        (),
        parse=parse_selectors,
        kind="selector or list of selectors",
    )
    language: str | None = _help(
        "Language code such as 'en', 'et' or 'pt-BR': search stems words in this language. "
        "Left out: plain analysis.",
        None,
        parse=_language,
        kind="language code",
    )
    js: bool = _help("Render the page in headless Chromium before extracting it.", False)
    interval: timedelta | None = _help(
        "Time between two checks of this policy, at least a minute. Left out: [schedule] interval.",
        None,
        parse=_policy_interval,
    )
    filter: tuple[str, ...] = _help(
        "Names of Open Terms Archive filters (custom JavaScript, which is not run: the names "
        "are kept and listed with the extraction).",
        (),
        parse=_filter_names,
        kind="list of strings",
    )
    ignore: tuple[str, ...] = _help(
        "Regular expressions: spans of text that do not count as a change (still stored). "
        "Each must be valid and must not match the empty string.",
        (),
        parse=parse_ignore,
        kind="regex or list of regexes",
    )


# --------------------------------------------------------------------------- the whole file


@dataclass(frozen=True)
class TopLevelSettings:
    """Keys at the top of config.toml, outside any table. Paths are relative to the file."""

    data_dir: Path = _help(
        "Folder of all data: the versions and snapshots git repositories, the search index "
        "and state.sqlite. --data-dir or $POLICY_ARCHIVE_DATA_DIR override it.",
        Path("data"),
    )
    declarations: Path | None = _help(
        "Folder of Open Terms Archive declarations (`<Service>.json`), loaded as they are, "
        "besides the [[policy]] tables.",
        None,
    )


@dataclass(frozen=True)
class Table:
    """Where a settings dataclass sits in config.toml."""

    name: str  # "" for the top level
    settings: type
    many: bool = False  # [[name]]: an array of tables

    @property
    def header(self) -> str:
        if not self.name:
            return "top level"
        return f"[[{self.name}]]" if self.many else f"[{self.name}]"


TABLES: tuple[Table, ...] = (
    Table("", TopLevelSettings),
    Table("fetch", FetchSettings),
    Table("schedule", ScheduleSettings),
    Table("web", WebSettings),
    Table("smtp", SmtpSettings),
    Table("notify", NotifySettings),
    Table("export", ExportSettings),
    Table("search", SearchSettings),
    Table("database", DatabaseSettings),
    Table("policy", PolicySettings, many=True),
    Table("alert", AlertSettings, many=True),
)
"""Every table of config.toml, in the order the reference documents them."""

SECTIONS: dict[str, type] = {t.name: t.settings for t in TABLES if t.name and not t.many}
TOP_LEVEL_KEYS = {
    *(f.name for f in dataclasses.fields(TopLevelSettings)),
    *(t.name for t in TABLES if t.name),
}


@dataclass(frozen=True)
class Config:
    data_dir: Path
    fetch: FetchSettings = field(default_factory=FetchSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    web: WebSettings = field(default_factory=WebSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    export: ExportSettings = field(default_factory=ExportSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    alerts: tuple[AlertSettings, ...] = ()
    policies: tuple[PolicyConfig, ...] = ()
    declarations: Path | None = None
    path: Path | None = None

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def snapshots_dir(self) -> Path:
        return self.data_dir / "snapshots"

    @property
    def index_dir(self) -> Path:
        return self.data_dir / "index"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.sqlite"

    @property
    def search_url(self) -> str:
        """The PostgreSQL URL of the search index (engine 'postgresql'): [search] url, else
        [database] url; "" when neither is set."""
        return self.search.url or self.database.url

    def policy(self, service: str, type_: str) -> PolicyConfig | None:
        for p in self.policies:
            if p.service == service and p.type == type_:
                return p
        return None

    def with_data_dir(self, data_dir: Path) -> Config:
        return dataclasses.replace(self, data_dir=data_dir)


# --------------------------------------------------------------------------- reading tables


def unwrap_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (TOML has no null: an optional key is one left out)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) is not None and len(args) == 1 else annotation


def _convert(value: Any, annotation: Any, where: str, key: str) -> Any:
    annotation = unwrap_optional(annotation)
    try:
        if annotation is timedelta:
            result = parse_duration(value)
            if result.total_seconds() <= 0:
                raise ValueError("must be longer than zero")
            return result
        if annotation is bool:
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if annotation is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("expected a whole number")
            return value
        if annotation is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("expected a number")
            return float(value)
        if annotation is str:
            if not isinstance(value, str):
                raise ValueError("expected a string")
            return value
        if annotation is Path:
            if not isinstance(value, str):
                raise ValueError("expected a path string")
            return Path(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {key} = {value!r}: {exc}") from None
    raise TypeError(f"{key}: no reader for {annotation!r}; declare the field with parse=")


def _read_value(spec: dataclasses.Field[Any], annotation: Any, value: Any, where: str) -> Any:
    parse = spec.metadata.get("parse")
    if parse is None:
        return _convert(value, annotation, where, spec.name)
    try:
        return parse(value, where)
    except ValueError as exc:
        raise ConfigError(f"{where}: {spec.name} {exc}") from None


def build_section(cls: type, table: Any, where: str) -> Any:
    """Build a flat settings dataclass from a TOML table, rejecting unknown keys."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: expected a table, got {table!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"known keys are {', '.join(sorted(fields))}"
        )
    values = {k: _read_value(fields[k], hints[k], v, where) for k, v in table.items()}
    missing = [
        f.name
        for f in fields.values()
        if f.name not in values
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {', '.join(missing)}")
    return cls(**values)


def _tables(raw: Mapping[str, Any], name: str, plural: str, origin: str) -> list[Any]:
    tables = raw.get(name, [])
    if not isinstance(tables, list):
        raise ConfigError(f"{origin}: use [[{name}]] tables (double brackets) for {plural}")
    return tables


def _policy_where(origin: str, service: Any, type_: Any) -> str:
    return f"{origin}: policy {service!r} / {type_!r}"


def parse_policy_table(table: Any, origin: str, index: int) -> PolicyConfig:
    """One ``[[policy]]`` table, read as :class:`PolicySettings`, as a :class:`PolicyConfig`."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{origin}: [[policy]] #{index + 1} is not a table")
    service, type_ = table.get("service"), table.get("type")
    named = all(isinstance(v, str) and v.strip() for v in (service, type_))
    where = _policy_where(origin, service, type_) if named else f"{origin}: [[policy]] #{index + 1}"
    p: PolicySettings = build_section(PolicySettings, table, where)
    if (p.url is None) == (not p.urls):
        raise ConfigError(f'{where}: give exactly one of url = "..." or urls = ["...", ...]')
    urls = (p.url,) if p.url is not None else p.urls
    return PolicyConfig(
        service=p.service,
        type=p.type,
        sources=tuple(
            Source(url=u, select=p.select, remove=p.remove, js=p.js, filters=p.filter) for u in urls
        ),
        language=p.language,
        interval=p.interval,
        origin=origin,
        ignore=p.ignore,
    )


def _check_duplicates(policies: list[PolicyConfig]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for p in policies:
        if p.key in seen:
            raise ConfigError(
                f"{p.origin}: policy {p.service!r} / {p.type!r} is declared twice "
                f"(also in {seen[p.key]}); remove one of them"
            )
        seen[p.key] = p.origin


def _check_limits(origin: str, fetch: FetchSettings, web: WebSettings) -> None:
    if fetch.concurrency < 1 or fetch.max_body_bytes < 1024:
        raise ConfigError(f"{origin}: [fetch] concurrency must be ≥ 1 and max_body_bytes ≥ 1024")
    if web.search_readers < 1:
        raise ConfigError(f"{origin}: [web] search_readers must be ≥ 1")


def with_secrets(settings: Any, environ: Mapping[str, str]) -> Any:
    """``settings`` with each empty secret (a field declared with ``env=``) read from its
    environment variable, when that is set."""
    found = {
        f.name: environ[f.metadata["env"]]
        for f in dataclasses.fields(settings)
        if f.metadata.get("env")
        and not getattr(settings, f.name)
        and environ.get(f.metadata["env"])
    }
    return dataclasses.replace(settings, **found) if found else settings


# --------------------------------------------------------------------------- loading


def load_config(
    path: Path | str | None = None,
    *,
    data_dir: Path | str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read the configuration file once.

    ``path`` defaults to ``$POLICY_ARCHIVE_CONFIG`` or ``./config.toml``; ``data_dir``
    (or ``$POLICY_ARCHIVE_DATA_DIR``) overrides the file's ``data_dir``; empty secrets are read
    from ``$POLICY_ARCHIVE_SECRET_KEY`` and ``$POLICY_ARCHIVE_SMTP_PASSWORD``. ``environ``
    defaults to ``os.environ``.
    """
    env = os.environ if environ is None else environ
    path = Path(path or env.get(ENV_CONFIG) or DEFAULT_CONFIG)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such configuration file; pass --config PATH or create one "
            "(see the README for an example)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    override = data_dir or env.get(ENV_DATA_DIR)
    return config_from_mapping(
        raw, path=path, data_dir=Path(override) if override else None, environ=env
    )


def config_from_mapping(
    raw: Mapping[str, Any],
    *,
    path: Path | None = None,
    data_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build a :class:`Config` from parsed TOML (also used by tests and the demo).

    Empty secrets are read from ``environ`` (default ``os.environ``), as :func:`load_config`
    does; pass ``environ={}`` for a config that depends on the file alone.
    """
    env = os.environ if environ is None else environ
    origin = str(path) if path else "config"
    base = path.resolve().parent if path else Path.cwd()
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(
            f"{origin}: unknown top-level key(s) {', '.join(unknown)}; known keys are "
            f"{', '.join(sorted(TOP_LEVEL_KEYS))}"
        )
    sections = {
        name: with_secrets(build_section(cls, raw.get(name, {}), f"{origin}: [{name}]"), env)
        for name, cls in SECTIONS.items()
    }
    _check_limits(origin, sections["fetch"], sections["web"])
    if sections["search"].engine == "postgresql" and not (
        sections["search"].url or sections["database"].url
    ):
        raise ConfigError(
            f"{origin}: [search] engine = 'postgresql' needs a database: set [database] url "
            "(or [search] url) to a postgresql:// URL, e.g. the POSTGRES_URL that "
            "`scripts/services start` prints"
        )
    top_keys = {f.name for f in dataclasses.fields(TopLevelSettings)}
    top: TopLevelSettings = build_section(
        TopLevelSettings, {k: v for k, v in raw.items() if k in top_keys}, origin
    )
    data_dir = data_dir if data_dir is not None else top.data_dir
    if not data_dir.is_absolute():
        data_dir = base / data_dir
    policies = [
        parse_policy_table(t, origin, i)
        for i, t in enumerate(_tables(raw, "policy", "policies", origin))
    ]
    declarations = top.declarations
    if declarations is not None and not declarations.is_absolute():
        declarations = base / declarations
    # The admin UI's declarations: the configured folder, else data_dir/declarations once it
    # exists (policies added in the browser, seen by every command without a config edit).
    folder = declarations if declarations is not None else data_dir / MANAGED_DECLARATIONS
    if declarations is not None or folder.is_dir():
        from archive.config.declarations import load_declarations_dir, with_settings

        policies.extend(with_settings(load_declarations_dir(folder), folder))
    _check_duplicates(policies)
    alerts = tuple(
        build_section(AlertSettings, t, f"{origin}: [[alert]] #{i + 1}")
        for i, t in enumerate(_tables(raw, "alert", "alerts", origin))
    )
    return Config(
        data_dir=data_dir,
        policies=tuple(policies),
        declarations=declarations,
        alerts=alerts,
        path=path,
        **sections,
    )
