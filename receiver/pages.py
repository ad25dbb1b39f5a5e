"""The dashboard: inboxes, an inbox's captures grouped by event type, a capture's detail.

Full pages for people; the same URLs answer htmx with fragments (the list, the
detail) and say so with `Vary: HX-Request`.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from . import access, catalog, inboxes, live, outbound, present, relay, sender, storage
from .capture import fired_webhook_lines
from .errors import database_is_away, log_database_away
from .extensions import db, htmx
from .models import Capture, Inbox
from .verification import MISMATCH, MISSING, VERDICTS, VERIFIED

bp = Blueprint("pages", __name__)

FILTERS = ("event", "verdict", "method", "q")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


@bp.record_once
def _show_direction_controls(state) -> None:
    state.app.jinja_env.finalize = present.shown


@bp.app_context_processor
def helpers():
    return {
        "ago": present.ago,
        "size": present.size,
        "short_code": present.short_code,
        "catalog": catalog,
        "VERDICTS": VERDICTS,
        "filter_args": filter_args,
        "wire_text": present.wire_text,
        "part_names": present.part_names,
        # The one rule for inbox names, for the forms' pattern, title and hint.
        "SLUG_PATTERN": storage.SLUG_PATTERN,
        "SLUG_RULE": inboxes.SLUG_RULE,
    }


def filter_args(filters: dict[str, str], **changes: str) -> dict[str, str]:
    """Query arguments for a filtered URL, leaving out empty ones."""
    merged = {**filters, **changes}
    return {name: value for name, value in merged.items() if value}


@bp.app_template_filter("http_url")
def http_url(value: str) -> bool:
    """Only http(s) URLs a sender wrote become links (no javascript: or data:)."""
    return urlsplit(value).scheme.lower() in ("http", "https")


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """Captured data is hostile: only our own scripts and styles may run."""
    if request.blueprint != "hooks":
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        # A link a sender put in a capture must not learn the dashboard's
        # address; the dashboard itself gets it, which CSRF checks over HTTPS need.
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def _fragment_request() -> bool:
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def _inbox_or_404(slug: str) -> Inbox:
    inbox = storage.find_inbox(slug)
    if inbox is None:
        abort(404, description=f"No inbox named {slug!r}.")
    return inbox


def _capture_in(inbox: Inbox, capture_id: int) -> Capture:
    capture = None if capture_id > storage.MAX_ID else db.session.get(Capture, capture_id)
    if capture is None or capture.inbox_id != inbox.id:
        abort(404, description="No such capture in this inbox.")
    return capture


def _filters(source=None) -> dict[str, str]:
    source = request.args if source is None else source
    values = {name: source.get(name, "").strip()[:200] for name in FILTERS}
    if values["verdict"] not in VERDICTS:
        values["verdict"] = ""
    values["method"] = values["method"].upper()
    return values


def _cursor(name: str) -> int | None:
    return storage.as_id(request.args.get(name))


@bp.get("/")
def home(error=None):
    rows = db.session.execute(select(Inbox).order_by(Inbox.slug)).scalars().all()
    return render_template("home.html", inboxes=rows, totals=storage.inbox_totals(), error=error)


def event_groups(inbox_id: int) -> list[dict]:
    """The nine documented events (always, zero or not), then other types seen,
    then UNKNOWN; each with its total and secret verdict counts."""
    per_type: dict[str, dict[str, int]] = {}
    for event_type, verdict, n in storage.count_rows(inbox_id):
        per_type.setdefault(event_type, {}).setdefault(verdict, 0)
        per_type[event_type][verdict] += n
    names = list(catalog.EVENTS)
    names += sorted(t for t in per_type if t not in catalog.EVENTS and t != catalog.UNKNOWN)
    names.append(catalog.UNKNOWN)
    groups = []
    for name in names:
        verdicts = per_type.get(name, {})
        groups.append(
            {
                "name": name,
                "documented": name in catalog.EVENTS,
                "total": sum(verdicts.values()),
                "verified": verdicts.get(VERIFIED, 0),
                "mismatch": verdicts.get(MISMATCH, 0),
                "missing": verdicts.get(MISSING, 0),
            }
        )
    return groups


def _list_context(inbox: Inbox, filters: dict[str, str]) -> dict:
    # The live cursor first, and the list up to it: a capture arriving between
    # the two reads is then fetched live, never skipped or shown twice.
    newest = storage.newest_id(inbox.id)
    rows = storage.list_captures(inbox.id, before=newest + 1, **filters)
    return {
        "inbox": inbox,
        "filters": filters,
        "rows": rows,
        "newest": newest,
        "groups": event_groups(inbox.id),
        "methods": _method_choices(inbox.id, filters["method"]),
        "more": len(rows) == storage.PAGE_SIZE,
    }


def _method_choices(inbox_id: int, chosen: str) -> tuple[str, ...]:
    """The usual methods, then others among the inbox's newest captures
    (PROPFIND), and one a link filters by though none of those has it."""
    others = [m for m in storage.recent_methods(inbox_id) if m not in METHODS]
    if chosen and chosen not in METHODS and chosen not in others:
        others.append(chosen)
    return (*METHODS, *others)


def _vary(response: Response) -> Response:
    response.headers.add("Vary", "HX-Request")
    return response


@bp.get("/inboxes/<slug>")
def inbox_page(slug: str):
    inbox = _inbox_or_404(slug)
    context = _list_context(inbox, _filters())
    if _fragment_request() and htmx.target == "capture-list":
        return _vary(
            make_response(render_template("partials/capture_list.html", oob=True, **context))
        )
    return _vary(make_response(render_template("inbox.html", capture=None, **context)))


@bp.get("/inboxes/<slug>/captures/<int:capture_id>")
def capture_page(slug: str, capture_id: int):
    inbox = _inbox_or_404(slug)
    capture = _capture_in(inbox, capture_id)
    detail = _detail_context(inbox, capture)
    if _fragment_request() and htmx.target == "detail":
        # With the title of the page the pushed URL names.
        return _vary(make_response(render_template("partials/capture_swap.html", **detail)))
    context = _list_context(inbox, _filters())
    context.update(detail)
    return _vary(make_response(render_template("inbox.html", **context)))


def _detail_context(inbox: Inbox, capture: Capture) -> dict:
    return {
        "inbox": inbox,
        "capture": capture,
        "body": present.body_view(capture),
        "event": present.event_view(capture),
        "log_lines": fired_webhook_lines(capture.param_list),
        # Behind a proxy's path prefix, the address the sender used carries it.
        "curl": present.curl_command(capture, request.url_root),
        "curl_body_file": present.curl_body_file(capture),
        "attempts": relay.attempts(capture.id),
        # A wrong key is easier to tell apart from the right ones side by side.
        "compared": inboxes.secrets_of(inbox) if capture.verdict == MISMATCH else [],
    }


@bp.get("/inboxes/<slug>/rows")
def rows(slug: str):
    """Older rows (`before=`, load-more on scroll) or new arrivals (`after=`, live)."""
    inbox = _inbox_or_404(slug)
    filters = _filters()
    after = _cursor("after")
    if after is not None:
        # The oldest arrivals first, a page at a time: the cursor moves only past
        # rows that were sent, and a full page asks for the next one at once, so
        # a burst (or a long pause) is shown whole.
        found = storage.list_captures(inbox.id, after=after, oldest_first=True, **filters)
        return render_template(
            "partials/live_rows.html",
            inbox=inbox,
            filters=filters,
            rows=found[::-1],
            newest=found[-1].id if found else after,
            more=len(found) == storage.PAGE_SIZE,
            groups=event_groups(inbox.id),
        )
    found = storage.list_captures(inbox.id, before=_cursor("before"), **filters)
    return render_template(
        "partials/capture_rows.html",
        inbox=inbox,
        filters=filters,
        rows=found,
        more=len(found) == storage.PAGE_SIZE,
    )


def _stream_later(reason: str, retry_ms: int) -> Response:
    response = Response(live.unavailable(reason, retry_ms), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/inboxes/<slug>/stream")
def stream(slug: str):
    try:
        inbox = _inbox_or_404(slug)
    except SQLAlchemyError as exc:
        if not database_is_away(exc):
            raise
        log_database_away(exc)
        return _stream_later("database", 3000)
    # A reconnecting page sends the last event's id, `<newest id>.<removals>`.
    last, _, last_removals = request.headers.get("Last-Event-ID", "").partition(".")
    cursor = storage.as_id(last) or _cursor("after") or 0
    removals = storage.as_id(last_removals)
    if removals is None:
        removals = _cursor("removals")
    config = current_app.config
    slots = live.slots_for(current_app)
    if not slots.take():
        return _stream_later("busy", 5000)
    body = live.events(
        live.watcher_for(current_app, db.engine),
        inbox.id,
        cursor,
        removals,
        lifetime=config["RECEIVER_STREAM_SECONDS"],
        heartbeat=config["RECEIVER_STREAM_HEARTBEAT_SECONDS"],
        gone=live.client_gone(request.environ),
    )
    response = Response(body, mimetype="text/event-stream")
    # Runs however the stream ends, even if it never started.
    response.call_on_close(slots.give_back)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return response


@bp.delete("/inboxes/<slug>/captures/<int:capture_id>")
def delete_capture(slug: str, capture_id: int):
    inbox = _inbox_or_404(slug)
    capture = _capture_in(inbox, capture_id)
    storage.delete_capture(capture)
    response = make_response(
        render_template(
            "partials/deleted.html",
            inbox=inbox,
            capture_id=capture_id,
            groups=event_groups(inbox.id),
            filters=_filters(),
        )
    )
    response.headers["HX-Push-Url"] = url_for("pages.inbox_page", slug=slug)
    return response


# The most row ids a page may ask about at once (50 rows a page, load-more included).
GONE_ASK_MAX = 10_000


@bp.post("/inboxes/<slug>/gone")
def gone(slug: str):
    """Which of the rows a page shows, and its open capture, were deleted
    elsewhere: the page asks when the live feed says captures were removed.
    Those rows leave the page; when none of its rows is left, the list starts
    again from what the inbox still holds."""
    inbox = _inbox_or_404(slug)
    asked = request.form.get("shown", "").split(",")[:GONE_ASK_MAX]
    shown = {capture_id for capture_id in map(storage.as_id, asked) if capture_id is not None}
    opened = storage.as_id(request.form.get("open"))
    kept = storage.existing_ids(inbox.id, shown | ({opened} if opened else set()))
    filters = _filters(request.form)
    open_removed = opened if opened and opened not in kept else None
    if shown and not shown & kept:
        # The list as the filter form would fetch it, in place of the old one.
        context = _list_context(inbox, filters)
        response = make_response(
            render_template(
                "partials/gone.html", relist=True, oob=True, open_removed=open_removed, **context
            )
        )
        response.headers["HX-Retarget"] = "#capture-list"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        response = make_response(
            render_template(
                "partials/gone.html",
                inbox=inbox,
                filters=filters,
                removed=sorted(shown - kept),
                open_removed=open_removed,
                groups=event_groups(inbox.id),
            )
        )
    if open_removed:
        # The page's address named the deleted capture.
        response.headers["HX-Replace-Url"] = url_for(
            "pages.inbox_page", slug=slug, **filter_args(filters)
        )
    return response


@bp.route("/inboxes/<slug>/clear", methods=["GET", "POST"])
def clear_inbox(slug: str):
    inbox = _inbox_or_404(slug)
    if request.method == "POST":
        cleared = storage.clear_inbox(inbox.id)
        flash(f"Inbox cleared: {cleared:,} capture{'' if cleared == 1 else 's'} deleted.")
        return redirect(url_for("pages.inbox_page", slug=slug), code=303)
    totals = storage.inbox_totals()
    return render_template("clear.html", inbox=inbox, total=totals.get(inbox.id, 0))


# Managing inboxes and API tokens. Every form posts with a CSRF token and is
# answered with a 303 to the page that shows the result.

BOOLEAN_SETTINGS = ("enforce_secret", "cors")
# Every other setting is a text field of the form, read by inboxes.READERS.
FORM_SETTINGS = ("slug", *(name for name in inboxes.READERS if name not in BOOLEAN_SETTINGS))


@bp.post("/inboxes")
def create_inbox():
    try:
        inbox = inboxes.create(request.form.get("slug", "").strip() or None)
    except inboxes.SettingsError as error:
        return home(error=error), 422
    return redirect(url_for("pages.inbox_page", slug=inbox.slug), code=303)


# What the settings form calls each setting, for messages about one.
FIELD_LABELS = {
    "slug": "Name",
    "enforce_secret": "Enforce the secrettoken",
    "cors": "Allow cross-origin requests",
    "capacity": "Capacity",
    "retention_days": "Retention in days",
    "response_status": "Status",
    "response_content_type": "Content type",
    "response_delay_ms": "Delay",
    "response_body": "Body",
    "response_headers": "Extra headers",
    "fail_remaining": "Fail the next N deliveries",
    "fail_status": "…with status",
    "forward_url": "Forward every capture to",
    "label": "Label",
    "secret": "Secret API key",
    "user": "Only for user",
    "to": "To inbox",
}


def _settings_page(inbox: Inbox, error=None, status: int = 200, typed=None, **extra):
    """The settings form; after a refused save, with what was typed in it."""
    settings = inboxes.settings(inbox)
    stale = None
    if error is None:
        # A value saved before a check was added: the form would refuse every
        # save until it is changed, so say which one now.
        try:
            inboxes.check(settings)
        except inboxes.SettingsError as refused:
            stale = refused
    countdown_shown = settings["fail_remaining"]  # as stored, whatever was typed
    forward_refused = _forward_refusal(settings["forward_url"])
    if typed is not None:
        settings.update(typed)
    context = {
        "inbox": inbox,
        "countdown_shown": countdown_shown,
        "forward_refused": forward_refused,
        "field_labels": FIELD_LABELS,
        "settings": settings,
        "stale": stale,
        "secrets": inboxes.secrets_of(inbox),
        "others": db.session.execute(select(Inbox).where(Inbox.id != inbox.id).order_by(Inbox.slug))
        .scalars()
        .all(),
        "error": error,
        "saved": request.args.get("saved"),
        **extra,
    }
    return render_template("settings.html", **context), status


def _forward_refusal(url: str | None) -> str | None:
    """Why forwards to the saved URL are refused now (outbound requests off,
    or a host outside RECEIVER_OUTBOUND_ALLOW): the URL is kept, as that is
    this server's setting, but the page says so rather than let each capture's
    attempt be the first to tell."""
    if not url:
        return None
    try:
        outbound.check(url, current_app.config)
    except outbound.Refused as refused:
        return str(refused)
    return None


@bp.route("/inboxes/<slug>/settings", methods=["GET", "POST"])
def settings(slug: str):
    inbox = _inbox_or_404(slug)
    if request.method == "GET":
        return _settings_page(inbox)
    values = {name: request.form.get(name, "") for name in FORM_SETTINGS if name in request.form}
    # A countdown the deliveries since moved on: saving the page unchanged
    # would set it back to what the page showed and fail them all again.
    if "fail_remaining" in values and values["fail_remaining"] == request.form.get(
        "fail_remaining_shown"
    ):
        del values["fail_remaining"]
    for name in BOOLEAN_SETTINGS:
        values[name] = name in request.form
    for name in ("response_content_type", "response_body", "forward_url"):
        if name in values and values[name] == "":
            values[name] = None
    try:
        inboxes.update(inbox, values)
    except inboxes.SettingsError as error:
        db.session.rollback()
        return _settings_page(inbox, error=error, status=422, typed=values)
    return redirect(url_for("pages.settings", slug=inbox.slug, saved="settings"), code=303)


@bp.post("/inboxes/<slug>/secrets")
def add_secret(slug: str):
    inbox = _inbox_or_404(slug)
    secret = request.form.get("secret", "")
    label, user = request.form.get("label", ""), request.form.get("user", "")
    try:
        inboxes.add_secret(inbox, label, secret, user or None)
    except inboxes.SettingsError as error:
        # Said beside the add-secret form, with what was typed (never the key).
        return _settings_page(
            inbox, secret_error=error, secret_typed={"label": label, "user": user}, status=422
        )
    saved = "secret-trimmed" if inboxes.trimmed(secret) != secret else "secret"
    return redirect(url_for("pages.settings", slug=slug, saved=saved), code=303)


@bp.post("/inboxes/<slug>/secrets/<int:secret_id>/remove")
def remove_secret(slug: str, secret_id: int):
    inbox = _inbox_or_404(slug)
    if not inboxes.remove_secret(inbox, secret_id):
        abort(404, description="This inbox has no such secret.")
    return redirect(url_for("pages.settings", slug=slug, saved="secret-removed"), code=303)


@bp.post("/inboxes/<slug>/copy-config")
def copy_config(slug: str):
    source = _inbox_or_404(slug)
    target_slug = request.form.get("to", "").strip()
    try:
        target = storage.find_inbox(target_slug) or inboxes.create(target_slug)
        inboxes.copy_config(source, target)
    except inboxes.SettingsError as error:
        # Said beside the copy form, about its one field, with what was typed.
        refused = inboxes.SettingsError("to", error.message)
        return _settings_page(source, copy_error=refused, copy_to=target_slug, status=422)
    return redirect(url_for("pages.settings", slug=target.slug, saved="copied"), code=303)


@bp.route("/inboxes/<slug>/delete", methods=["GET", "POST"])
def delete_inbox(slug: str):
    inbox = _inbox_or_404(slug)
    if request.method == "POST":
        inboxes.remove(inbox)
        flash(f"Inbox {inbox.slug} deleted, with its captures.")
        return redirect(url_for("pages.home"), code=303)
    total = storage.inbox_totals().get(inbox.id, 0)
    return render_template("delete_inbox.html", inbox=inbox, total=total)


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    created = None
    if request.method == "POST":
        created = access.create_token(request.form.get("label", ""))
    return render_template("tokens.html", tokens=access.tokens(), created=created)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    if not access.revoke_token(token_id):
        abort(404, description="No such token.")
    return redirect(url_for("pages.tokens"), code=303)


# Developer tools: send a test delivery to an inbox, replay a capture.


def _own_capture_url(slug: str, event: str) -> str | None:
    """This server's own capture URL, by the address the request came in on
    (never the Host header, which a client chooses)."""
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    if sock is None:
        return None
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    # Straight to this server, so without a proxy's path prefix.
    path = url_for("hooks.capture", inbox=slug, rest=event).removeprefix(request.script_root)
    return f"http://{host}:{port}" + path


@bp.post("/inboxes/<slug>/send-test")
def send_test(slug: str):
    """Deliver a realistic event to this inbox over HTTP, as the platform would."""
    inbox = _inbox_or_404(slug)
    event = request.form.get("event", "")
    encoding = request.form.get("encoding", "form")
    case = request.form.get("secret_case", "none")
    refused = None
    if event not in catalog.EVENTS or encoding not in sender.ENCODINGS:
        refused = "Pick one of the documented events and an encoding."
    secret = {
        "typed": request.form.get("secret") or None,
        "wrong": sender.wrong_secret(),
        "none": None,
    }.get(case)
    if case == "typed" and not secret:
        refused = "Type the key to send, or pick 'a wrong key' or 'no key'."
    if refused:
        # 200, as for replay: htmx swaps only successful answers, and this is shown.
        return render_template("partials/send_result.html", refused=refused)
    delivery = sender.build(event, secret=secret, encoding=encoding)
    target = _own_capture_url(inbox.slug, event)
    if target is not None:
        outcome = sender.send(delivery, target, timeout=10)
        status, latency, capture_id, error = (
            outcome.status,
            outcome.latency_ms,
            dict(outcome.headers).get("X-Capture-Id"),
            outcome.error,
        )
    else:  # no socket to call back (an in-process test client): same path, no network
        target = url_for("hooks.capture", inbox=inbox.slug, rest=event)
        started = time.perf_counter()
        answer = current_app.test_client().post(
            delivery.url(target), data=delivery.body, headers=delivery.headers
        )
        status, latency, capture_id, error = (
            answer.status_code,
            round((time.perf_counter() - started) * 1000, 1),
            answer.headers.get("X-Capture-Id"),
            None,
        )
    return render_template(
        "partials/send_result.html",
        inbox=inbox,
        event=event,
        case=case,
        encoding=encoding,
        status=status,
        latency=latency,
        capture_id=capture_id,
        error=error,
    )


@bp.post("/inboxes/<slug>/captures/<int:capture_id>/replay")
def replay_capture(slug: str, capture_id: int):
    inbox = _inbox_or_404(slug)
    capture = _capture_in(inbox, capture_id)
    error = None
    try:
        relay.replay(
            capture,
            request.form.get("to", "").strip(),
            with_subpath="with_subpath" in request.form,
            secret=request.form.get("secret") or None,
        )
    except outbound.Refused as refusal:
        error = str(refusal)
    except ValueError as exc:
        error = str(exc)
    return render_template(
        "partials/relay_log.html",
        inbox=inbox,
        capture=capture,
        attempts=relay.attempts(capture.id),
        error=error,
    )  # 200 either way: htmx swaps only successful answers, and the error is shown
