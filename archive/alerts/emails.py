"""Alert emails: a plain-text and an HTML part, safe headers, RFC 8058 one-click unsubscribe.

Every piece of policy text is escaped in the HTML part. Header values are checked before use:
a CR, LF or other control character in any header is refused (:class:`HeaderInjectionError`),
never folded or silently stripped. ``List-Unsubscribe`` is written literally
(``<https://…>, <mailto:…>``, RFC 2369): never RFC 2047-encoded, so mail providers find the
one-click link.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import formatdate, parseaddr
from html import escape

from archive.alerts import content
from archive.alerts.content import AlertContent
from archive.alerts.errors import HeaderInjectionError
from archive.alerts.subscriptions import Subscription
from archive.diff import DELETE, INSERT, Span
from archive.diff.summary import render_text

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]")
INS_STYLE = "background:#d4f7d4;text-decoration:none"
DEL_STYLE = "background:#fbd5d5"


MAX_HEADER_LINE = 998
"""RFC 5322's limit on a line, without its CRLF."""


class ListHeader:
    """An RFC 2369 list header (``<url>, <mailto:…>``): kept as written, never encoded.

    The standard policy folds a long unstructured header into RFC 2047 encoded words, which
    hides the URLs from mail providers; this header is one line when it fits in
    :data:`MAX_HEADER_LINE` and is otherwise folded only between its entries.
    """

    max_count = 1

    @classmethod
    def parse(cls, value: str, kwds: dict) -> None:
        kwds["decoded"] = value
        kwds["parse_tree"] = None  # only fold() would use it, and fold() is our own

    def fold(self, *, policy: Policy) -> str:
        name, value = self.name, str(self)  # type: ignore[attr-defined]
        if len(name) + 2 + len(value) <= MAX_HEADER_LINE:
            return f"{name}: {value}{policy.linesep}"
        entries = [entry.strip() for entry in value.split(",")]
        return f"{name}: " + f",{policy.linesep} ".join(entries) + policy.linesep


_HEADERS = HeaderRegistry()
# typeshed wants a BaseHeader subclass; the registry itself mixes BaseHeader into ``cls``.
_HEADERS.map_to_type("list-unsubscribe", ListHeader)  # type: ignore[arg-type]
EMAIL_POLICY = SMTP.clone(header_factory=_HEADERS)
"""The SMTP policy (CRLF, 78-column folding) with literal list headers."""


def safe_header(name: str, value: str) -> str:
    """``value`` if it is safe in header ``name``; raise :class:`HeaderInjectionError`."""
    if _UNSAFE.search(value):
        raise HeaderInjectionError(
            f"refused to send an email: the {name} header would contain a line break or "
            f"control character ({value[:60]!r})"
        )
    return value


def _date(value: str | None) -> str:
    if not value:
        return ""
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M %Z").strip()


def _facts(alert: AlertContent) -> list[tuple[str, str]]:
    f = alert.facts
    rows = [("Service", alert.service), ("Document", alert.type)]
    if f.get("query"):
        rows.append(("Saved search", f"“{f['query']}”"))
    if alert.event in content.VERSION_EVENTS:
        if f.get("previous"):
            rows.append(("Previous version", f"{_date(f['previous_date'])} ({f['previous'][:10]})"))
        rows.append(("Recorded", f"{_date(f['date'])} ({f['version'][:10]})"))
        if alert.summary is not None:
            rows.append(("Words added", str(alert.summary.words_added)))
            rows.append(("Words removed", str(alert.summary.words_removed)))
            if alert.summary.formatting_changes:
                rows.append(("Formatting-only changes", str(alert.summary.formatting_changes)))
            if alert.summary.sections and not alert.summary.first:
                rows.append(("Sections", "; ".join(alert.summary.sections)))
    elif alert.event == content.POLICY_FAILING:
        rows.append(("Failed checks in a row", str(f["failures"])))
        rows.append(("Last error", str(f["reason"])))
        rows.append(("May fix itself", "yes" if f.get("transient") else "no: check the source"))
    elif alert.event == content.POLICY_RECOVERED:
        rows.append(("Failed checks before", str(f["failures"])))
    elif alert.event == content.POLICY_FLAPPING:
        rows += _flap_facts(alert)
    return rows


def _flap_facts(alert: AlertContent) -> list[tuple[str, str]]:
    f, rows = alert.facts, []
    if f.get("returned_to"):
        back = f"{_date(f.get('returned_to_date'))} ({f['returned_to'][:10]})"
        rows.append(("Back to the text of", back))
    if f.get("version"):
        rows.append(("Recorded", f"{_date(f.get('date'))} ({f['version'][:10]})"))
    removed, added = flap_lines(alert)
    return [*rows, ("Lines removed", str(len(removed))), ("Lines added", str(len(added)))]


FLAP_ADVICE = (
    "If these lines are noise, add an `ignore` pattern to the policy in config.toml (for a "
    "few volatile words inside the policy) or a `remove` selector (for a banner or a block): "
    "see docs/noise.md, “Pages that flap”. Once the page serves one text again for a "
    "day, its changes alert as usual."
)


def flap_lines(alert: AlertContent) -> tuple[list[str], list[str]]:
    """The lines a flapping notice lists: (only in the text before, only in the new one)."""
    removed = alert.facts.get("lines_removed") or []
    added = alert.facts.get("lines_added") or []
    return [str(x) for x in removed], [str(x) for x in added]


def _lead(alert: AlertContent) -> str:
    s = alert.summary
    if alert.event == content.VERSION_RECORDED and s is not None and s.first:
        return (
            f"Policy Archive recorded the first version of this document ({s.words_added:,} words)."
        )
    if alert.event == content.VERSION_RECORDED:
        return "Policy Archive recorded a change to this document."
    if alert.event == content.SEARCH_MATCHED:
        return "A change made this document match your saved search."
    if alert.event == content.SEARCH_UNMATCHED:
        return "A change made this document stop matching your saved search."
    if alert.event == content.POLICY_FAILING:
        return "This document could not be fetched several times in a row."
    if alert.event == content.POLICY_FLAPPING:
        return (
            "This document went back to the text it served less than a day before, as an A/B "
            "test or servers out of step do. Every version is still recorded, but alerts about "
            "it are held (this is the only notice) until it serves one text again."
        )
    return "This document is being fetched again."


def _link_rows(alert: AlertContent) -> list[tuple[str, str]]:
    names = (
        ("diff", "Full diff"),
        ("version", "This version"),
        ("policy", "History"),
        ("source", "Source"),
    )
    return [(label, alert.links[key]) for key, label in names if key in alert.links]


# ------------------------------------------------------------------ plain text


def alert_text(alert: AlertContent) -> str:
    width = max(len(k) for k, _ in _facts(alert)) + 2
    lines = [alert.title, "", _lead(alert), ""]
    lines += [f"{k + ':':<{width}}{v}" for k, v in _facts(alert)]
    s = alert.summary
    if s is not None and s.excerpts:
        lines += ["", "Main edits:", ""]
        lines += [f"  {excerpt}" for excerpt in s.excerpts]
    if alert.passages:
        lines += ["", "What changed ([-removed-] {+added+}):", ""]
        for passage in alert.passages:
            lines += ["  " + render_text(passage), ""]
        if alert.more_passages:
            more = alert.more_passages
            lines += [f"  …and {more} more changed passages (see the full diff).", ""]
    if alert.event == content.POLICY_FLAPPING:
        removed, added = flap_lines(alert)
        lines += ["", "Lines that differ between the two texts (- removed, + added):", ""]
        lines += [f"  - {line}" for line in removed] + [f"  + {line}" for line in added]
        if not removed and not added:
            lines.append("  (none besides whitespace)")
        lines += ["", FLAP_ADVICE]
    lines.append("")
    lines += [f"{label}: {url}" for label, url in _link_rows(alert)]
    return "\n".join(lines).rstrip() + "\n"


def _footer_text(sub: Subscription, unsubscribe_url: str) -> str:
    return (
        "\n-- \n"
        f"You get this email because you subscribed to {sub.describe()} on Policy Archive.\n"
        f"Unsubscribe: {unsubscribe_url}\n"
    )


# ------------------------------------------------------------------ HTML


def _passage_html(passage: Sequence[Span]) -> str:
    out = []
    for seg in passage:
        text = escape(" ".join(seg.text.split()))
        if seg.op == DELETE:
            out.append(f'<del style="{DEL_STYLE}">{text}</del>')
        elif seg.op == INSERT:
            out.append(f'<ins style="{INS_STYLE}">{text}</ins>')
        else:
            out.append(text)
    return " ".join(p for p in out if p)


def alert_html(alert: AlertContent) -> str:
    rows = "".join(
        f'<tr><th align="left" style="padding-right:1em">{escape(k)}</th><td>{escape(v)}</td></tr>'
        for k, v in _facts(alert)
    )
    parts = [
        f"<h2>{escape(alert.title)}</h2>",
        f"<p>{escape(_lead(alert))}</p>",
        f"<table>{rows}</table>",
    ]
    s = alert.summary
    if s is not None and s.excerpts:
        items = "".join(f"<li>{escape(str(e))}</li>" for e in s.excerpts)
        parts.append(f'<h3>Main edits</h3><ul class="excerpts">{items}</ul>')
    if alert.passages:
        parts.append("<h3>What changed</h3>")
        parts += [
            f'<p style="border-left:3px solid #ccc;padding-left:.6em">{_passage_html(p)}</p>'
            for p in alert.passages
        ]
        if alert.more_passages:
            parts.append(f"<p>…and {alert.more_passages} more changed passages.</p>")
    if alert.event == content.POLICY_FLAPPING:
        parts += _flap_html(alert)
    links = " · ".join(
        f'<a href="{escape(url, quote=True)}">{escape(label)}</a>'
        for label, url in _link_rows(alert)
    )
    if links:
        parts.append(f"<p>{links}</p>")
    return "\n".join(parts)


def _flap_html(alert: AlertContent) -> list[str]:
    removed, added = flap_lines(alert)
    items = [f'<li><del style="{DEL_STYLE}">{escape(line)}</del></li>' for line in removed]
    items += [f'<li><ins style="{INS_STYLE}">{escape(line)}</ins></li>' for line in added]
    advice = re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(FLAP_ADVICE))
    return [
        "<h3>Lines that differ between the two texts</h3>",
        f"<ul>{''.join(items)}</ul>" if items else "<p>(none besides whitespace)</p>",
        f"<p>{advice}</p>",
    ]


def _page(body: str, footer: str) -> str:
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif;line-height:1.4;max-width:50em">'
        f'{body}<hr><p style="color:#666;font-size:smaller">{footer}</p></body></html>'
    )


def _footer_html(sub: Subscription, unsubscribe_url: str) -> str:
    return (
        f"You get this email because you subscribed to {escape(sub.describe())} on Policy "
        f'Archive. <a href="{escape(unsubscribe_url, quote=True)}">Unsubscribe</a>.'
    )


# ------------------------------------------------------------------ messages


def _message(sender: str, to: str, subject: str, message_id: str) -> EmailMessage:
    msg = EmailMessage(policy=EMAIL_POLICY)
    msg["From"] = safe_header("From", sender)
    msg["To"] = safe_header("To", to)
    msg["Subject"] = safe_header("Subject", subject)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = safe_header("Message-ID", message_id)
    msg["Auto-Submitted"] = "auto-generated"
    return msg


def alert_email(
    alerts: Sequence[AlertContent],
    *,
    sub: Subscription,
    sender: str,
    unsubscribe_url: str,
    domain: str = "policy-archive.invalid",
) -> EmailMessage:
    """One email for one alert, or a digest of several (``sub.digest``)."""
    if not alerts:
        raise ValueError("an alert email needs at least one alert")
    if len(alerts) == 1:
        subject = alerts[0].title
        text, html = alert_text(alerts[0]), alert_html(alerts[0])
    else:
        subject = f"Policy Archive digest: {len(alerts)} alerts"
        text = f"{subject}\n\n" + "\n\n".join(alert_text(a) for a in alerts)
        html = f"<h1>{escape(subject)}</h1>" + "<hr>".join(alert_html(a) for a in alerts)
    msg = _message(sender, sub.target, subject, f"<{alerts[0].alert_id}@{domain}>")
    msg["List-Unsubscribe"] = safe_header(
        "List-Unsubscribe", list_unsubscribe(unsubscribe_url, sender)
    )
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text + _footer_text(sub, unsubscribe_url))
    msg.add_alternative(_page(html, _footer_html(sub, unsubscribe_url)), subtype="html")
    return msg


def list_unsubscribe(unsubscribe_url: str, sender: str) -> str:
    """``<https://…>, <mailto:sender?subject=unsubscribe>``: the one-click link (RFC 8058)
    first, then a mail to the sender's address for clients that only know mailto."""
    address = parseaddr(sender)[1]
    if not address:
        return f"<{unsubscribe_url}>"
    return f"<{unsubscribe_url}>, <mailto:{address}?subject=unsubscribe>"


def confirm_email(
    alert: AlertContent,
    *,
    sub: Subscription,
    sender: str,
    confirm_url: str,
    domain: str = "policy-archive.invalid",
) -> EmailMessage:
    """The double opt-in email: nothing is sent to this address until the link is followed."""
    msg = _message(sender, sub.target, alert.title, f"<{alert.alert_id}@{domain}>")
    text = (
        f"Someone asked Policy Archive to email {sub.target} about {sub.describe()}.\n\n"
        f"To confirm, open this link and press the button:\n{confirm_url}\n\n"
        "If it was not you, ignore this email: you will get nothing more from us.\n"
    )
    html = (
        f"<p>Someone asked Policy Archive to email {escape(sub.target)} about "
        f"{escape(sub.describe())}.</p>"
        f'<p><a href="{escape(confirm_url, quote=True)}">Confirm the subscription</a></p>'
        "<p>If it was not you, ignore this email: you will get nothing more from us.</p>"
    )
    msg.set_content(text)
    msg.add_alternative(_page(html, "Policy Archive"), subtype="html")
    return msg
