"""Who may use the dashboard and the API. Capture URLs are always open.

- With RECEIVER_ADMIN_PASSWORD set: people log in (the password is kept only
  as a slow hash; the session cookie is signed), API clients send
  `Authorization: Bearer <token>` with a token made in the dashboard (kept
  only as a keyed hash).
- Without it: only clients on this machine may use them; anyone else gets 403
  naming the setting, so a server exposed by accident shows nobody's data.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import delete, select, update
from werkzeug.exceptions import BadRequest
from werkzeug.security import check_password_hash, generate_password_hash

from . import storage
from .errors import error_response, wants_json
from .extensions import db
from .models import ApiToken, LoginFailure

bp = Blueprint("access", __name__)

OPEN_BLUEPRINTS = {"hooks"}
OPEN_ENDPOINTS = {"static", "access.login", "ops.healthz", "ops.readyz"}
# Answered like the API: bearer tokens accepted, JSON errors.
MACHINE_ENDPOINTS = {"ops.prometheus"}
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 300
LOGIN_WINDOW = timedelta(seconds=LOGIN_WINDOW_SECONDS)
TOKEN_PREFIX = "whr_"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
LOCAL_ONLY = (
    "The dashboard and API answer only on this machine until RECEIVER_ADMIN_PASSWORD is set."
)


def init_app(app: Flask) -> None:
    set_password(app, app.config.get("RECEIVER_ADMIN_PASSWORD"))
    # Flask's own default is None (no attribute), so setdefault would not do.
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = DashboardSessions()
    app.before_request(guard)
    app.before_request(refuse_nul_characters)
    app.register_blueprint(bp)


class DashboardSessions(SecureCookieSessionInterface):
    """Sessions serve the dashboard's login and CSRF only. A capture URL never
    reads or writes one, so a cookie sent with a delivery is kept as a header
    but not verified: an empty session that is never saved."""

    def open_session(self, app: Flask, request):
        # Sessions open before the URL is matched: tell capture URLs by path.
        if request.path.startswith("/hooks/"):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app: Flask) -> bool:
        # Served over HTTPS (here, or by a trusted proxy that says so): the
        # login's cookie goes back over HTTPS only, never in the clear.
        return super().get_cookie_secure(app) or request.is_secure


def set_password(app: Flask, password: str | None) -> None:
    """The dashboard's password, kept as a slow hash, and the tag a login's
    session carries. The tag comes from the password itself, not from its
    hash (salted anew by every worker), so a login holds on every worker and
    across restarts, and changing the password logs everyone out."""
    app.config["RECEIVER_ADMIN_PASSWORD_HASH"] = (
        generate_password_hash(password) if password else None
    )
    app.config["RECEIVER_ADMIN_LOGIN_TAG"] = (
        hmac.new(
            app.config["SECRET_KEY"].encode(), b"dashboard-login:" + password.encode(), "sha256"
        ).hexdigest()
        if password
        else None
    )


def login_required() -> bool:
    return current_app.config["RECEIVER_ADMIN_PASSWORD_HASH"] is not None


def _logged_in() -> bool:
    tag = current_app.config.get("RECEIVER_ADMIN_LOGIN_TAG")
    return tag is not None and hmac.compare_digest(str(session.get("admin", "")), tag)


LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
# Headers that say a proxy (or this receiver's own forwarding) relays someone else.
RELAY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Receiver-Forwarded")


def from_this_machine() -> bool:
    """A person at this machine's own browser or shell, not someone relayed to it."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if not address.is_loopback:
        return False
    # A page on another site whose name was rebound to 127.0.0.1 still sends
    # its own name as Host: only local names count as this machine.
    if request.host.rsplit(":", 1)[0].lower() not in LOCAL_HOSTS and not _is_local_ip(request.host):
        return False
    # A proxy on this machine relaying someone else is not "this machine",
    # unless the app was told to trust it (then remote_addr is the real client).
    relayed = any(name in request.headers for name in RELAY_HEADERS)
    return not (relayed and current_app.config["RECEIVER_TRUSTED_PROXIES"] == 0)


def _is_local_ip(host: str) -> bool:
    name = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def token_digest(token: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"api-token:" + token.encode(), hashlib.sha256).hexdigest()


def _bearer_ok() -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    found = db.session.execute(
        update(ApiToken)
        .where(ApiToken.digest == token_digest(token.strip()))
        .values(last_used_at=storage.utcnow())
    )
    db.session.commit()
    return found.rowcount == 1


def guard():
    if request.blueprint in OPEN_BLUEPRINTS or request.endpoint in OPEN_ENDPOINTS:
        return None
    if request.endpoint is None:
        return None  # a 404 says nothing about anyone's data
    api = request.blueprint == "api" or request.endpoint in MACHINE_ENDPOINTS
    if api and _bearer_ok():
        return None
    if not login_required():
        if not from_this_machine():
            if api or wants_json():
                return error_response(403, "local_only", LOCAL_ONLY)
            return render_template("forbidden.html", message=LOCAL_ONLY), 403
    elif not _logged_in():
        if api or wants_json():
            response = error_response(
                401, "login_required", "Log in, or send Authorization: Bearer <token>."
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response
        return redirect(url_for("access.login", next=request.full_path.rstrip("?")))
    if api and request.method in UNSAFE and request.method != "DELETE" and not request.is_json:
        # Without a token the browser's cookie or address vouches for the caller;
        # a JSON body cannot be sent cross-site without a preflight, so no
        # other site can make this request on someone's behalf.
        return error_response(415, "json_required", "Send the body as application/json.")
    return None


NUL_REFUSED = (
    "The URL holds a NUL character (%00); no inbox name, capture id or search takes one. "
    "(Capture URLs take anything: there it is captured as sent.)"
)


def refuse_nul_characters():
    """A NUL character in a page's or the API's URL (a search, a name) is
    refused with 400: PostgreSQL's text cannot hold one, so looking for it
    would fail there as a 500. (Settings refuse one field by field.)"""
    # Capture URLs by path too: one the URL rules cannot express has no blueprint.
    if request.path.startswith("/hooks/") or request.endpoint == "static":
        return None
    texts = [request.path, *itertools.chain.from_iterable(request.args.items(multi=True))]
    if any("\x00" in text for text in texts):
        raise BadRequest(NUL_REFUSED)
    return None


class _Attempts:
    """Failed logins per client address, in the database, so that every worker
    and app server of it counts the same ones (a bound, not an audit)."""

    @staticmethod
    def blocked(who: str) -> float:
        """Seconds until `who` may try again; 0 when it may now."""
        now = storage.utcnow()
        recent = (
            db.session.execute(
                select(LoginFailure.at)
                .where(LoginFailure.address == who[:64], LoginFailure.at > now - LOGIN_WINDOW)
                .order_by(LoginFailure.at.desc())
                .limit(LOGIN_ATTEMPTS)
            )
            .scalars()
            .all()
        )
        if len(recent) < LOGIN_ATTEMPTS:
            return 0.0
        return max(0.0, (recent[-1] + LOGIN_WINDOW - now).total_seconds())

    @staticmethod
    def failed(who: str) -> None:
        now = storage.utcnow()
        db.session.execute(delete(LoginFailure).where(LoginFailure.at <= now - LOGIN_WINDOW))
        db.session.add(LoginFailure(address=who[:64], at=now))
        db.session.commit()

    @staticmethod
    def clear(who: str | None) -> int:
        """Forget the failed logins of `who`, or of every address (None): how many."""
        statement = delete(LoginFailure)
        if who is not None:
            statement = statement.where(LoginFailure.address == who[:64])
        forgotten = db.session.execute(statement).rowcount
        db.session.commit()
        return forgotten


attempts = _Attempts()


def _safe_next(target: str | None) -> str:
    """Only a path on this site (browsers read `//host`, a backslash or a tab after
    the first slash as the start of another site's address)."""
    if (
        target
        and target.startswith("/")
        and target.isprintable()
        and not any(c in target for c in " \\")
        and target[1:2] not in ("/", "")
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("pages.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not login_required():
        return redirect(url_for("pages.home"))
    error = None
    status = 200
    who = request.remote_addr or "?"
    if request.method == "POST":
        wait = attempts.blocked(who)
        if wait:
            error = f"Too many failed attempts; try again in {int(wait) + 1} seconds."
            status = 429
        elif check_password_hash(
            current_app.config["RECEIVER_ADMIN_PASSWORD_HASH"], request.form.get("password", "")
        ):
            attempts.clear(who)
            session.clear()
            session["admin"] = current_app.config["RECEIVER_ADMIN_LOGIN_TAG"]
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")), code=303)
        else:
            attempts.failed(who)
            error = "That password is not right."
            status = 401
    response = render_template("login.html", error=error, next=request.args.get("next", ""))
    return response, status, ({"Retry-After": str(LOGIN_WINDOW_SECONDS)} if status == 429 else {})


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("access.login") if login_required() else url_for("pages.home"), 303)


# API tokens: made and revoked in the dashboard, shown once, kept as a keyed hash.


def tokens() -> list[ApiToken]:
    return list(db.session.execute(select(ApiToken).order_by(ApiToken.id)).scalars())


def create_token(label: str) -> str:
    label = label.strip()[:100]
    if not label:
        abort(400, description="Give the token a label.")
    if "\x00" in label:
        abort(400, description="The label must not contain a NUL character.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(
        ApiToken(
            label=label,
            digest=token_digest(token),
            hint=token[: len(TOKEN_PREFIX) + 4],
            created_at=storage.utcnow(),
        )
    )
    db.session.commit()
    return token


def revoke_token(token_id: int) -> bool:
    row = None if token_id > storage.MAX_SMALL_ID else db.session.get(ApiToken, token_id)
    if row is None:
        return False
    db.session.delete(row)
    db.session.commit()
    return True
