"""Command-line tools: `flask --app wsgi setup`, `inbox ...`, `purge`, `token ...`, `login ...`."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import sys
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import inspect, select, text

from . import inboxes, storage, writer
from .extensions import db
from .models import ExpectedSecret, Inbox

# PostgreSQL advisory lock key for setting the database up ("rcvsetup" in ASCII).
SETUP_LOCK = int.from_bytes(b"rcvsetup", "big")


def setup_database() -> None:
    """Bring the schema up to date; a new database gets the `default` inbox,
    so a newcomer has a URL to copy at once (one deleted later stays gone).
    Servers that start together take turns: the first migrates, the others
    then find the schema up to date (at once, two would both create it)."""
    with _setup_turn(db.engine):
        new = not inspect(db.engine).has_table("alembic_version")
        upgrade()
        if new:
            storage.ensure_default_inbox()
    writer.mark_set_up(db.engine)


@contextlib.contextmanager
def _setup_turn(engine):
    """Held while the database is set up: on PostgreSQL a session advisory
    lock, on SQLite an flock on the database's folder. (Not on the file: a
    process that closes any descriptor of a SQLite file loses the locks its
    SQLite connections hold on it, and other processes then misread it.)"""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SETUP_LOCK})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SETUP_LOCK})
                connection.commit()
        return
    path = writer.database_file(engine)
    fd = None
    if path is not None:
        with contextlib.suppress(OSError):  # no folder: connecting says so
            fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # lets go of the lock


def set_up_if_new() -> None:
    """A command run before the server ever started sets the database up
    first, as the server's start would (an older schema is left to it)."""
    if not inspect(db.engine).has_table("alembic_version"):
        setup_database()


@click.command("setup")
def setup_command():
    """Create or upgrade the database and the default inbox."""
    setup_database()
    click.echo("Database ready.")


inbox_cli = AppGroup("inbox", help="Manage inboxes.", callback=with_appcontext(set_up_if_new))


def _inbox_or_exit(slug: str) -> Inbox:
    inbox = storage.find_inbox(slug)
    if inbox is None:
        raise click.ClickException(f"No inbox named {slug!r}.")
    return inbox


@inbox_cli.command("list")
def list_inboxes():
    """Every inbox: name, captures kept, and whether it enforces the secrettoken."""
    totals = storage.inbox_totals()
    for inbox in db.session.execute(select(Inbox).order_by(Inbox.slug)).scalars():
        mode = "enforce" if inbox.enforce_secret else "inspect"
        click.echo(f"{inbox.slug}\t{totals.get(inbox.id, 0)} captures\t{mode}")


@inbox_cli.command("create")
@click.argument("slug", required=False)
def create_inbox(slug: str | None):
    """Create an inbox; without SLUG it gets a random, unguessable name."""
    try:
        inbox = inboxes.create(slug)
    except inboxes.SettingsError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created inbox {inbox.slug!r}.")


@inbox_cli.command("add-secret")
@click.argument("slug")
@click.option("--label", required=True, help="A name for this key, e.g. 'production'.")
@click.option("--user", default=None, help="Only accept it for deliveries from this `user`.")
@click.option(
    "--secret",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="The key. Prompted for when omitted; read from standard input with '-'.",
)
def add_secret(slug: str, label: str, user: str | None, secret: str):
    """Add an expected secrettoken; only a keyed hash of it is kept."""
    inbox = _inbox_or_exit(slug)
    if secret == "-":
        secret = sys.stdin.readline().rstrip("\r\n")
    if not secret:
        raise click.ClickException("The secret is empty.")
    try:
        row = inboxes.add_secret(inbox, label, secret, user)
    except inboxes.SettingsError as error:
        raise click.ClickException(str(error)) from None
    trimmed = " (the spaces around the key were left out)" if secret != secret.strip() else ""
    click.echo(f"Added secret {row.label!r} ({row.fingerprint}) to inbox {slug!r}{trimmed}.")
    if current_app.config.get("RECEIVER_SECRET_KEY_FILE") and db.engine.dialect.name != "sqlite":
        # Kept as a hash keyed with SECRET_KEY: app servers with another one
        # would call every genuine delivery a mismatch.
        click.echo(
            "Warning: SECRET_KEY is not set here, so the key was hashed with this machine's "
            "instance/secret_key. App servers with another SECRET_KEY will not recognise it: "
            "run this with the servers' SECRET_KEY.",
            err=True,
        )


@inbox_cli.command("secrets")
@click.argument("slug")
def list_secrets(slug: str):
    """An inbox's expected secrets: id, label, fingerprint, user (never the key)."""
    inbox = _inbox_or_exit(slug)
    rows = db.session.execute(
        select(ExpectedSecret)
        .where(ExpectedSecret.inbox_id == inbox.id)
        .order_by(ExpectedSecret.id)
    ).scalars()
    for secret in rows:
        click.echo(
            f"{secret.id}\t{secret.label}\t{secret.fingerprint}\t{secret.user or '(any user)'}"
        )


@inbox_cli.command("remove-secret")
@click.argument("slug")
@click.argument("label")
def remove_secret(slug: str, label: str):
    """Stop expecting the secret(s) with LABEL."""
    inbox = _inbox_or_exit(slug)
    rows = (
        db.session.execute(
            select(ExpectedSecret).where(
                ExpectedSecret.inbox_id == inbox.id, ExpectedSecret.label == label
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        raise click.ClickException(f"Inbox {slug!r} has no secret labelled {label!r}.")
    for row in rows:
        db.session.delete(row)
    db.session.commit()
    click.echo(f"Removed secret {label!r} from inbox {slug!r}.")


@inbox_cli.command("set")
@click.argument("slug")
@click.argument("settings", nargs=-1, required=True)
def set_settings(slug: str, settings: tuple[str, ...]):
    """Change settings: NAME=VALUE ... (e.g. response_status=503 cors=true)."""
    inbox = _inbox_or_exit(slug)
    values = {}
    for item in settings:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.ClickException(f"{item!r} is not NAME=VALUE.")
        values[name.strip()] = value
    try:
        inboxes.update(inbox, values)
    except inboxes.SettingsError as error:
        raise click.ClickException(str(error)) from None
    for name, value in inboxes.settings(inbox).items():
        click.echo(f"{name}: {value}")


@inbox_cli.command("copy-config")
@click.argument("source")
@click.argument("target")
def copy_config(source: str, target: str):
    """Copy SOURCE's secrets, enforce mode, response, CORS, capacity and retention
    to TARGET (created if missing), replacing TARGET's own. Captures are not copied."""
    origin = _inbox_or_exit(source)
    existing = storage.find_inbox(target)
    replaced = len(inboxes.secrets_of(existing)) if existing is not None else 0
    try:
        destination = existing or inboxes.create(target)
        inboxes.copy_config(origin, destination)
    except inboxes.SettingsError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Copied the configuration of {source!r} to {target!r}.")
    if replaced:
        were = "secret it had was" if replaced == 1 else f"{replaced} secrets it had were"
        click.echo(f"The {were} replaced by those of {source!r}.")


@inbox_cli.command("delete")
@click.argument("slug")
@click.confirmation_option(prompt="Delete the inbox and all its captures?")
def delete_inbox(slug: str):
    """Delete an inbox with its settings, secrets and captures (asks first; --yes)."""
    inboxes.remove(_inbox_or_exit(slug))
    click.echo(f"Deleted inbox {slug!r}.")


@inbox_cli.command("enforce")
@click.argument("slug")
@click.argument("mode", type=click.Choice(["on", "off"]))
def enforce(slug: str, mode: str):
    """on: answer a delivery whose secrettoken is not verified with 401 (still recorded)."""
    inbox = _inbox_or_exit(slug)
    inbox.enforce_secret = mode == "on"
    db.session.commit()
    click.echo(f"Inbox {slug!r}: enforce mode {mode}.")
    if inbox.enforce_secret and not inboxes.secrets_of(inbox):
        click.echo("No key is expected yet, so every delivery is answered 401: add one.")


@click.command("purge")
@with_appcontext
def purge_command():
    """Delete captures older than each inbox's retention (run it from cron)."""
    set_up_if_new()
    total = 0
    for inbox in db.session.execute(
        select(Inbox).where(Inbox.retention_days.is_not(None))
    ).scalars():
        cutoff = storage.utcnow() - timedelta(days=inbox.retention_days)
        purged = storage.purge_before(inbox.id, cutoff)
        total += purged
        days = inbox.retention_days
        unit = "day" if days == 1 else "days"
        click.echo(f"{inbox.slug}: purged {purged} captures older than {days} {unit}")
    click.echo(f"Purged {total} captures.")


token_cli = AppGroup("token", help="Manage API tokens.", callback=with_appcontext(set_up_if_new))


@token_cli.command("create")
@click.argument("label")
def create_token(label: str):
    """Create an API token and print it (only a hash of it is kept)."""
    from .access import create_token as make

    click.echo(make(label))


def _one_line(text: str) -> str:
    """A label as one line: control characters escaped (\\n, \\t)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _utc(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "never"


@token_cli.command("list")
def list_tokens():
    """Every API token: id, label, how it starts, created, last used (never the token)."""
    from .access import tokens

    rows = tokens()
    if not rows:
        click.echo("No API tokens yet.")
    for token in rows:
        click.echo(
            f"{token.id}\t{_one_line(token.label)}\t{token.hint}…"
            f"\tcreated {_utc(token.created_at)}\tlast used {_utc(token.last_used_at)}"
        )


@token_cli.command("revoke")
@click.argument("id_or_hint", metavar="ID|HINT|TOKEN")
def revoke_token(id_or_hint: str):
    """Revoke a token, by its id, by how it starts (as `token list` shows it),
    or by the whole token (one that leaked, say)."""
    from .access import revoke_token as revoke
    from .access import token_digest, tokens

    # The hint as shown ends with "…": copied with it (or as "..."), it still matches.
    wanted = id_or_hint.strip().removesuffix("…").removesuffix("...")
    rows = tokens()
    digest = token_digest(id_or_hint.strip())  # as the API reads a Bearer token
    matches = (
        [row for row in rows if str(row.id) == wanted]
        or [row for row in rows if row.digest == digest]
        or [row for row in rows if row.hint == wanted]
    )
    if len(matches) > 1:
        ids = ", ".join(str(row.id) for row in matches)
        raise click.ClickException(
            f"{len(matches)} tokens start with {wanted!r} (ids {ids}): revoke one by its id."
        )
    # Only a hint's worth of what was given is echoed: it may be a whole token.
    shown = wanted if len(wanted) <= 16 else wanted[:8] + "…"
    if not matches:
        raise click.ClickException(
            f"No API token has the id or hint {shown!r}: `token list` shows them."
        )
    # Read before revoking: a deleted row's attributes cannot be loaded again.
    token_id, label, hint = matches[0].id, matches[0].label, matches[0].hint
    if not revoke(token_id):
        raise click.ClickException(f"Token {token_id} was revoked meanwhile.")
    click.echo(f"Revoked token {token_id} {label!r} ({hint}…).")


login_cli = AppGroup("login", help="Dashboard logins.", callback=with_appcontext(set_up_if_new))


@login_cli.command("unblock")
@click.argument("address", required=False)
def unblock_login(address: str | None):
    """Let ADDRESS (or, without one, every address) try to log in again now,
    instead of after the lockout that failed logins bring on."""
    from .access import attempts

    if address is None:
        forgotten = attempts.clear(None)
        failures = "1 failed login" if forgotten == 1 else f"{forgotten} failed logins"
        click.echo(f"Forgot {failures}: every address may try to log in again now.")
        return
    address = address.strip()
    try:  # as the server writes it: 2001:DB8::1 is 2001:db8::1
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise click.ClickException(f"{address!r} is not an IP address.") from None
    locked = attempts.blocked(address) > 0
    attempts.clear(address)
    if locked:
        click.echo(f"Lifted the lockout of {address}: it may try to log in again now.")
    else:
        click.echo(f"{address} is not locked out; its failed logins, if any, are forgotten.")


def init_app(app: Flask) -> None:
    app.cli.add_command(setup_command)
    app.cli.add_command(inbox_cli)
    app.cli.add_command(purge_command)
    app.cli.add_command(token_cli)
    app.cli.add_command(login_cli)
