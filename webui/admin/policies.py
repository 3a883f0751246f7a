"""``/admin/policies``: add and tune policies in the browser, with a live extraction preview.

Add: paste a URL → the page is fetched through the guarded fetcher (the SSRF guard applies) and
kept (archive.manage.preview) → the editor shows it in a sandboxed frame (our picker script
inside reports clicked elements by ``postMessage``) next to the Markdown the archive would store,
re-extracted from the kept page on each selector change → save writes an Open Terms Archive
declaration in the declarations repository (a commit authored by the user) and asks for the
first check at once. Tune: the same editor over the policy's latest snapshot; a save records a
``Re-extract`` commit (no alert) and the page shows the diff it caused. Recheck, pause/resume
and remove are POST forms. config.toml is never written.

Checks and re-extractions are requests in state.sqlite (archive.manage.requests): inside
``run`` its pickup thread claims them; under ``serve`` this process takes the free writer lock
and runs them on a thread of its own, else leaves them to the writer. Pages poll
``/api/admin/policies/requests/<id>``.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from archive.config import Config, PolicyConfig, check_url
from archive.diff import diff_texts
from archive.errors import ConfigError, FetchError
from archive.fetch import Fetcher
from archive.manage.declared import (
    Declarations,
    Draft,
    FormErrors,
    LivePolicies,
    author_for,
    declarations_dir,
    draft_of,
    is_managed,
    parse_form,
    parse_selector_lines,
    selector_lines,
    valid_until_for,
)
from archive.manage.pauses import Pauses
from archive.manage.pickup import run_directly
from archive.manage.preview import KeptPage, PreviewStore, excerpt, frame_document, preview
from archive.manage.requests import CHECK, FIRST_CHECK, REEXTRACT, Request, Requests
from store.errors import StoreError
from webui.auth import audit, current_user, require_role
from webui.context import archive, web_state
from webui.security import CSP

bp = Blueprint("admin_policies", __name__)

EXTENSION = "policy_archive_admin_policies"
FRAME_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline' http: https:; "
    "img-src http: https: data:; font-src http: https: data:; connect-src 'none'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox allow-scripts"
)
"""The preview frame's policy. ``sandbox`` repeats the iframe's attribute, so the page stays in
an opaque origin (no cookies, no DOM of ours) even when its URL is opened on its own."""
EDITOR_CSP = CSP + "; frame-src 'self'"
"""The editor page's policy: the site's, plus framing the preview route of this site."""
FIELDS = ("service", "type", "url", "select", "remove", "language", "interval", "js")


@dataclass
class ManageState:
    """What the policy pages keep for the app (in ``app.extensions``, never a global)."""

    config: Config
    live: LivePolicies
    declarations: Declarations
    previews: PreviewStore
    direct: threading.Lock = field(default_factory=threading.Lock)


@bp.record_once
def _setup(setup: BlueprintSetupState) -> None:
    config = setup.app.extensions["policy_archive"].config
    live = LivePolicies(config)
    setup.app.extensions[EXTENSION] = ManageState(
        config=config,
        live=live,
        declarations=Declarations(config, live.repo),
        previews=PreviewStore(config.data_dir),
    )


def manage() -> ManageState:
    return current_app.extensions[EXTENSION]  # type: ignore[no-any-return]


def _user_name() -> str:
    user = current_user()
    return user.name if user is not None else "-"


def _policies() -> tuple[PolicyConfig, ...]:
    try:
        return manage().live.current()
    except ConfigError as exc:
        abort(500, description=f"The declarations cannot be read: {exc}")


def _policy_or_404(service: str, type_: str) -> PolicyConfig:
    for policy in _policies():
        if policy.key == (service, type_):
            return policy
    abort(404, description=f"No policy {service!r} / {type_!r} is declared.")


def _managed_or_409(service: str, type_: str) -> PolicyConfig:
    """The declared policy (404 if none), if it is declared where the admin UI writes (409)."""
    policy = _policy_or_404(service, type_)
    if not is_managed(manage().config, policy):
        abort(
            409,
            description=f"{policy.label} is declared in {policy.origin}, which the admin UI "
            "does not write: edit that file.",
        )
    return policy


def _kept_or_404(page_id: str) -> KeptPage:
    page = manage().previews.load(page_id)
    if page is None:
        abort(404, description="This preview has expired; fetch the page again.")
    return page


# --------------------------------------------------------------------------- requests


def _request_run(service: str, type_: str, kind: str) -> int:
    """Ask for a check or re-extraction; carry it out here if no other process is the writer."""
    request_id = Requests(archive().state).add(service, type_, kind, _user_name())
    _dispatch(request_id)
    return request_id


def _dispatch(request_id: int) -> None:
    """Carry pending requests out on a thread here, unless this UI runs inside ``run`` (whose
    pickup thread claims them) — if another process is the writer, it claims them."""
    if not archive().writer:
        state = manage()
        config = web_state().config

        def direct() -> None:
            with state.direct:
                run_directly(config)

        threading.Thread(target=direct, name=f"request-{request_id}", daemon=True).start()


def _request_json(req: Request) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": req.id,
        "kind": req.kind,
        "status": req.status,
        "outcome": req.outcome,
        "reason": req.reason,
        "version": req.version,
        "previous": req.previous,
        "diff_url": None,
    }
    if req.version and req.previous:
        args: dict[str, Any] = {"service": req.service, "type_": req.type, "from": req.previous}
        out["diff_url"] = url_for("diff.diff_page", to=req.version, **args)
    return out


# --------------------------------------------------------------------------- pages


@bp.get("/admin/policies")
@require_role("viewer")
def index() -> str:
    policies = sorted(_policies(), key=lambda p: (p.service.lower(), p.type.lower()))
    states = archive().state.all()
    paused = Pauses(archive().state).paused()
    config = manage().config
    rows = [
        {
            "policy": p,
            "state": states.get(p.key),
            "paused": p.key in paused,
            "managed": is_managed(config, p),
        }
        for p in policies
    ]
    return render_template("admin/policies.html", rows=rows, folder=str(declarations_dir(config)))


@bp.get("/admin/policies/new")
@require_role("editor")
def new() -> str | Response:
    page_id = request.args.get("preview", "")
    if not page_id:
        return render_template("admin/policy_new.html", url="", js=False, error=None)
    page = _kept_or_404(page_id)
    form = {"url": page.url, "js": "1" if page.js else ""}
    return _editor(page, form, {}, mode="new")


@bp.post("/admin/policies/new/fetch")
@require_role("editor")
def fetch() -> Response | tuple[str, int]:
    url = request.form.get("url", "").strip()[:2000]
    js = request.form.get("js") in ("1", "on")
    try:
        url = check_url(url)
        with Fetcher(manage().config.fetch) as fetcher:
            page = manage().previews.fetch(fetcher, url, js=js)
    except ValueError as exc:
        return render_template("admin/policy_new.html", url=url, js=js, error=str(exc)), 422
    except FetchError as exc:
        error = f"The page could not be fetched: {exc.reason}"
        return render_template("admin/policy_new.html", url=url, js=js, error=error), 422
    return redirect(url_for("admin_policies.new", preview=page.id), code=303)


def _editor(
    page: KeptPage,
    form: dict[str, str],
    errors: dict[str, str],
    *,
    mode: str,
    policy: PolicyConfig | None = None,
    status: int = 200,
) -> Response:
    try:
        select = parse_selector_lines(form.get("select", ""), "select")
        remove = parse_selector_lines(form.get("remove", ""), "remove")
        shown = preview(page, select, remove, min_chars=manage().config.fetch.min_text_chars)
    except ValueError:
        shown = None
    html = (
        web_state().renderer.markdown(excerpt(shown.markdown)) if shown and shown.markdown else ""
    )
    body = render_template(
        "admin/policy_edit.html",
        page=page,
        form=form,
        errors=errors,
        mode=mode,
        policy=policy,
        shown=shown,
        preview_html=html,
    )
    response = make_response(body, status)
    response.headers["Content-Security-Policy"] = EDITOR_CSP
    return response


@bp.post("/admin/policies/new")
@require_role("editor")
def create() -> Any:
    form = {k: request.form.get(k, "")[:20_000] for k in FIELDS}
    page = _kept_or_404(request.form.get("preview", ""))
    form["url"] = page.url  # the URL is the one fetched (and guarded), not a typed one
    try:
        draft = parse_form(form)
        if manage().live.find(*draft.key) is not None:
            raise FormErrors({"type": f"{draft.service} / {draft.type} is already tracked"})
    except FormErrors as exc:
        return _editor(page, form, exc.errors, mode="new", status=422)
    # The first check is asked for before the commit, so a `run` that sees the new policy
    # also sees the request (and does not check it twice).
    requests = Requests(archive().state)
    request_id = requests.add(draft.service, draft.type, FIRST_CHECK, _user_name())
    try:
        saved = manage().declarations.add(draft, author_for(_user_name()), _now())
    except FormErrors as exc:
        requests.cancel(request_id)
        return _editor(page, form, exc.errors, mode="new", status=422)
    except (StoreError, ConfigError) as exc:
        requests.cancel(request_id)
        return _editor(page, form, {"save": str(exc)}, mode="new", status=422)
    audit("policy.add", f"{draft.service} / {draft.type} ({draft.url}) commit {saved.commit}")
    _dispatch(request_id)
    flash(f"{draft.service} / {draft.type} is declared; its first check is running.", "ok")
    return _to_detail(draft.service, draft.type, request_id)


def _to_detail(service: str, type_: str, request_id: int | None = None) -> Response:
    args: dict[str, Any] = {"service": service, "type_": type_}
    if request_id is not None:
        args["request"] = request_id
    return redirect(url_for("admin_policies.detail", **args), code=303)


@bp.get("/admin/policies/<name:service>/<name:type_>")
@require_role("viewer")
def detail(service: str, type_: str) -> str:
    policy = _policy_or_404(service, type_)
    state = archive().state
    requests = Requests(state).recent(service, type_)
    diffs = {r.id: _diff(policy, r) for r in requests if r.version and r.previous}
    managed = is_managed(manage().config, policy)
    repo = manage().declarations.repo
    history = repo.log(Declarations.file_of(service), limit=20) if managed else []
    watched = request.args.get("request", type=int)
    return render_template(
        "admin/policy_detail.html",
        policy=policy,
        state=state.get(service, type_),
        paused=Pauses(state).is_paused(service, type_),
        managed=managed,
        requests=requests,
        diffs=diffs,
        history=history,
        watched=watched,
        current=archive().versions.current(service, type_),
    )


def _diff(policy: PolicyConfig, req: Request) -> Any:
    versions = archive().versions
    try:
        old = versions.text(policy.service, policy.type, req.previous or "")
        new = versions.text(policy.service, policy.type, req.version or "")
    except StoreError:
        return None
    return diff_texts(old, new)


@bp.get("/admin/policies/<name:service>/<name:type_>/edit")
@require_role("editor")
def edit(service: str, type_: str) -> Any:
    policy = _managed_or_409(service, type_)
    page = _snapshot_page(policy)
    extras = manage().declarations.extras().get(policy.key)
    return _editor(page, _form_of(draft_of(policy, extras)), {}, mode="edit", policy=policy)


def _form_of(draft: Draft) -> dict[str, str]:
    return {
        "service": draft.service,
        "type": draft.type,
        "url": draft.url,
        "select": selector_lines(draft.select),
        "remove": selector_lines(draft.remove),
        "language": draft.language or "",
        "interval": draft.interval or "",
        "js": "1" if draft.js else "",
    }


def _snapshot_page(policy: PolicyConfig) -> KeptPage:
    """The policy's latest snapshot, kept for the preview (404 if it has none yet)."""
    if len(policy.sources) != 1:
        abort(409, description=f"{policy.label} combines several pages; edit its declaration file.")
    snapshot = archive().snapshots.latest(policy.service, policy.type)
    if snapshot is None or len(snapshot.pages) != 1:
        abort(
            409,
            description=f"{policy.label} has no snapshot to preview yet: recheck it first.",
        )
    page = snapshot.pages[0]
    return manage().previews.keep(
        policy.sources[0].url,
        page.url,
        page.content_type,
        page.body,
        snapshot.date,
        js=policy.sources[0].js,
    )


@bp.post("/admin/policies/<name:service>/<name:type_>/edit")
@require_role("editor")
def update(service: str, type_: str) -> Any:
    policy = _managed_or_409(service, type_)
    form = {k: request.form.get(k, "")[:20_000] for k in FIELDS}
    form.update(service=service, type=type_, url=policy.sources[0].url)
    page = _kept_or_404(request.form.get("preview", ""))
    snapshot = archive().snapshots.latest(service, type_)
    now = _now()
    try:
        draft = parse_form(form)
        until = valid_until_for(snapshot.date if snapshot else None, now)
        saved = manage().declarations.update(draft, author_for(_user_name()), now, until)
    except FormErrors as exc:
        return _editor(page, form, exc.errors, mode="edit", policy=policy, status=422)
    except (StoreError, ConfigError) as exc:
        return _editor(page, form, {"save": str(exc)}, mode="edit", policy=policy, status=422)
    audit("policy.tune", f"{service} / {type_} commit {saved.commit}")
    if not saved.selectors_changed:
        flash("Saved; the selectors did not change, so nothing is re-extracted.", "ok")
        return _to_detail(service, type_)
    request_id = _request_run(service, type_, REEXTRACT)
    flash("Selectors saved; the latest snapshot is being re-extracted (no alert).", "ok")
    return _to_detail(service, type_, request_id)


@bp.post("/admin/policies/<name:service>/<name:type_>/recheck")
@require_role("editor")
def recheck(service: str, type_: str) -> Response:
    _policy_or_404(service, type_)
    request_id = _request_run(service, type_, CHECK)
    audit("policy.recheck", f"{service} / {type_}")
    flash("Check requested.", "ok")
    return _to_detail(service, type_, request_id)


@bp.post("/admin/policies/<name:service>/<name:type_>/pause")
@require_role("editor")
def pause(service: str, type_: str) -> Response:
    _policy_or_404(service, type_)
    Pauses(archive().state).pause(service, type_, _user_name())
    audit("policy.pause", f"{service} / {type_}")
    flash("Paused: no scheduled checks until it is resumed.", "ok")
    return _to_detail(service, type_)


@bp.post("/admin/policies/<name:service>/<name:type_>/resume")
@require_role("editor")
def resume(service: str, type_: str) -> Response:
    _policy_or_404(service, type_)
    Pauses(archive().state).resume(service, type_)
    audit("policy.resume", f"{service} / {type_}")
    flash("Resumed.", "ok")
    return _to_detail(service, type_)


@bp.post("/admin/policies/<name:service>/<name:type_>/remove")
@require_role("editor")
def remove(service: str, type_: str) -> Response:
    _managed_or_409(service, type_)
    try:
        saved = manage().declarations.remove(service, type_, author_for(_user_name()), _now())
    except (FormErrors, StoreError) as exc:
        abort(409, description=str(exc))
    Pauses(archive().state).resume(service, type_)
    audit("policy.remove", f"{service} / {type_} commit {saved.commit}")
    flash(
        f"{service} / {type_} is no longer tracked; its versions and the history of its "
        "declaration stay in git.",
        "ok",
    )
    return redirect(url_for("admin_policies.index"), code=303)


# --------------------------------------------------------------------------- the frame, the API


@bp.get("/admin/policies/preview/<page_id>/frame")
@require_role("editor")
def frame(page_id: str) -> Response:
    """The kept page, cleaned, for ``<iframe sandbox="allow-scripts">``: its own CSP (only
    our picker script, by nonce), framable by this site only."""
    page = _kept_or_404(page_id)
    nonce = secrets.token_urlsafe(16)
    html = frame_document(page, url_for("static", filename="picker.js"), nonce)
    response = make_response(html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = FRAME_CSP.format(nonce=nonce)
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/api/admin/policies/preview/<page_id>/extract")
@require_role("editor")
def extract_preview(page_id: str) -> Response:
    page = _kept_or_404(page_id)
    data = request.get_json(silent=True) or {}
    if not isinstance(data, dict):
        data = {}
    try:
        select = parse_selector_lines(str(data.get("select", ""))[:20_000], "select")
        remove = parse_selector_lines(str(data.get("remove", ""))[:20_000], "remove")
    except ValueError as exc:
        return jsonify({"ok": False, "error": str(exc), "html": "", "words": 0, "warnings": []})
    shown = preview(page, select, remove, min_chars=manage().config.fetch.min_text_chars)
    html = web_state().renderer.markdown(excerpt(shown.markdown)) if shown.markdown else ""
    return jsonify(
        {
            "ok": shown.error is None,
            "error": shown.error,
            "html": html,
            "words": shown.words,
            "warnings": list(shown.warnings),
            "server_ms": round(shown.seconds * 1000, 1),
        }
    )


@bp.get("/api/admin/policies/requests/<int:request_id>")
@require_role("viewer")
def request_status(request_id: int) -> Response:
    req = Requests(archive().state).get(request_id)
    if req is None:
        abort(404, description=f"There is no request #{request_id}.")
    return jsonify(_request_json(req))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
