"""The home page (search box, counts, recent changes, failing policies) and the clause timeline."""

from __future__ import annotations

from flask import Blueprint, render_template

from webui import queries
from webui.context import text_arg
from webui.search import run_when

bp = Blueprint("pages", __name__)

RECENT = 15


@bp.get("/")
def home() -> str:
    refs = queries.all_policies()
    failing = [r for r in refs if r.state.failing]
    return render_template(
        "home.html",
        counts=queries.counts(refs),
        recent=queries.recent_changes(per_page=RECENT).changes,
        failing=failing,
    )


@bp.get("/when")
def when() -> str:
    phrase = text_arg("phrase")
    timelines = run_when(phrase) if phrase else []
    return render_template("when.html", phrase=phrase, timelines=timelines)
