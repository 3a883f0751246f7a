"""Realistic pages for tests: a policy's plain text wrapped in a site's chrome.

The chrome is what extraction must drop: navigation, a cookie banner, a newsletter form, a
footer with links, scripts and styles.
"""

from __future__ import annotations

import html


def text_to_html(text: str) -> str:
    """Plain policy text to HTML: first line a title, short unpunctuated lines headings,
    lines starting with '- ' list items, the rest paragraphs."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out: list[str] = []
    in_list = False
    for i, line in enumerate(lines):
        is_item = line.startswith("- ")
        if in_list and not is_item:
            out.append("</ul>")
            in_list = False
        if i == 0:
            out.append(f"<h1>{html.escape(line)}</h1>")
        elif is_item:
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{html.escape(line[2:])}</li>")
        elif len(line) < 80 and not line.endswith((".", ":", ";", ",")):
            out.append(f"<h2>{html.escape(line)}</h2>")
        else:
            out.append(f"<p>{html.escape(line)}</p>")
    if in_list:
        out.append("</ul>")
    return "\n".join(out)


def policy_page(title: str, text: str, *, lang: str = "en") -> str:
    """A whole page: the policy inside <main>, surrounded by site chrome."""
    return f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>.cookie-banner {{ position: fixed; bottom: 0; }}</style>
<script>window.dataLayer = window.dataLayer || []; function gtag(){{}}</script>
</head>
<body>
<header class="site-header">
  <nav><a href="/">Home</a> <a href="/pricing">Pricing</a> <a href="/blog">Blog</a>
  <a href="/contact?utm_source=nav">Contact us</a></nav>
</header>
<div class="cookie-banner" id="cookies">We use cookies to improve your experience.
  <button>Accept all</button> <button>Reject</button></div>
<main id="content">
{text_to_html(text)}
</main>
<aside class="newsletter"><h3>Subscribe to our newsletter</h3>
  <form><input type="email" name="email"><button>Sign up</button></form></aside>
<footer class="site-footer"><p>© 2026 Example Ltd. All rights reserved.</p>
  <a href="/privacy">Privacy</a> <a href="/terms">Terms</a></footer>
<script src="/analytics.js"></script>
</body>
</html>"""
