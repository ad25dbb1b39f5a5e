"""The dashboard: inboxes, an inbox's captures grouped by event type, a capture's detail.

Full pages for people; the same URLs answer htmx with fragments (the list, the
detail) and say so with `Vary: HX-Request`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from . import catalog, live, present, storage
from .capture import fired_webhook_lines
from .extensions import db, htmx
from .models import Capture, Inbox
from .verification import MISMATCH, MISSING, VERDICTS, VERIFIED

bp = Blueprint("pages", __name__)

FILTERS = ("event", "verdict", "method", "q")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


@bp.app_context_processor
def helpers():
    return {
        "ago": present.ago,
        "size": present.size,
        "catalog": catalog,
        "VERDICTS": VERDICTS,
        "filter_args": filter_args,
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
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def _fragment_request() -> bool:
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def _inbox_or_404(slug: str) -> Inbox:
    inbox = storage.find_inbox(slug)
    if inbox is None:
        abort(404, description=f"No inbox named {slug!r}.")
    return inbox


def _filters() -> dict[str, str]:
    values = {name: request.args.get(name, "").strip()[:200] for name in FILTERS}
    if values["verdict"] not in VERDICTS:
        values["verdict"] = ""
    values["method"] = values["method"].upper()
    return values


def _cursor(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


@bp.get("/")
def home():
    inboxes = db.session.execute(select(Inbox).order_by(Inbox.slug)).scalars().all()
    return render_template("home.html", inboxes=inboxes, totals=storage.inbox_totals())


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
    rows = storage.list_captures(inbox.id, **filters)
    return {
        "inbox": inbox,
        "filters": filters,
        "rows": rows,
        "newest": storage.newest_id(inbox.id),
        "groups": event_groups(inbox.id),
        "methods": METHODS,
        "more": len(rows) == storage.PAGE_SIZE,
    }


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
    capture = db.session.get(Capture, capture_id)
    if capture is None or capture.inbox_id != inbox.id:
        abort(404, description="No such capture in this inbox.")
    detail = _detail_context(inbox, capture)
    if _fragment_request() and htmx.target == "detail":
        return _vary(make_response(render_template("partials/capture_detail.html", **detail)))
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
        "curl": present.curl_command(capture, request.host_url),
    }


@bp.get("/inboxes/<slug>/rows")
def rows(slug: str):
    """Older rows (`before=`, load-more on scroll) or new arrivals (`after=`, live)."""
    inbox = _inbox_or_404(slug)
    filters = _filters()
    after = _cursor("after")
    if after is not None:
        found = storage.list_captures(inbox.id, after=after, **filters)
        return render_template(
            "partials/live_rows.html",
            inbox=inbox,
            filters=filters,
            rows=found,
            newest=max([after, storage.newest_id(inbox.id)]),
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


@bp.get("/inboxes/<slug>/stream")
def stream(slug: str):
    inbox = _inbox_or_404(slug)
    last = request.headers.get("Last-Event-ID", "")
    cursor = int(last) if last.isdigit() else (_cursor("after") or 0)
    config = current_app.config
    body = live.events(
        db.engine,
        inbox.id,
        cursor,
        lifetime=config["RECEIVER_STREAM_SECONDS"],
        heartbeat=config["RECEIVER_STREAM_HEARTBEAT_SECONDS"],
    )
    response = Response(body, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events through at once
    return response


@bp.delete("/inboxes/<slug>/captures/<int:capture_id>")
def delete_capture(slug: str, capture_id: int):
    inbox = _inbox_or_404(slug)
    capture = db.session.get(Capture, capture_id)
    if capture is None or capture.inbox_id != inbox.id:
        abort(404, description="No such capture in this inbox.")
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


@bp.route("/inboxes/<slug>/clear", methods=["GET", "POST"])
def clear_inbox(slug: str):
    inbox = _inbox_or_404(slug)
    if request.method == "POST":
        storage.clear_inbox(inbox.id)
        return redirect(url_for("pages.inbox_page", slug=slug), code=303)
    totals = storage.inbox_totals()
    return render_template("clear.html", inbox=inbox, total=totals.get(inbox.id, 0))
