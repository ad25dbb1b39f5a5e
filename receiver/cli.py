"""Command-line tools: `flask --app wsgi setup`, `flask --app wsgi inbox ...`."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from flask_migrate import upgrade
from sqlalchemy import select

from . import storage
from .extensions import db
from .models import ExpectedSecret, Inbox
from .verification import digest, fingerprint


def setup_database() -> None:
    """Bring the schema up to date and make sure the default inbox exists."""
    upgrade()
    storage.ensure_default_inbox()


@click.command("setup")
def setup_command():
    """Create or upgrade the database and the default inbox."""
    setup_database()
    click.echo("Database ready.")


inbox_cli = AppGroup("inbox", help="Manage inboxes.")


def _inbox_or_exit(slug: str) -> Inbox:
    inbox = storage.find_inbox(slug)
    if inbox is None:
        raise click.ClickException(f"No inbox named {slug!r}.")
    return inbox


@inbox_cli.command("list")
def list_inboxes():
    totals = storage.inbox_totals()
    for inbox in db.session.execute(select(Inbox).order_by(Inbox.slug)).scalars():
        mode = "enforce" if inbox.enforce_secret else "inspect"
        click.echo(f"{inbox.slug}\t{totals.get(inbox.id, 0)} captures\t{mode}")


@inbox_cli.command("create")
@click.argument("slug")
def create_inbox(slug: str):
    if not storage.SLUG.match(slug):
        raise click.ClickException(
            "A slug is 1-64 lower-case letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    if storage.find_inbox(slug) is not None:
        raise click.ClickException(f"An inbox named {slug!r} already exists.")
    storage.create_inbox(slug)
    click.echo(f"Created inbox {slug!r}.")


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
    key = current_app.config["SECRET_KEY"]
    db.session.add(
        ExpectedSecret(
            inbox_id=inbox.id,
            label=label,
            user=user or None,
            digest=digest(key, secret),
            fingerprint=fingerprint(key, secret),
            created_at=storage.utcnow(),
        )
    )
    db.session.commit()
    click.echo(f"Added secret {label!r} ({fingerprint(key, secret)}) to inbox {slug!r}.")


@inbox_cli.command("secrets")
@click.argument("slug")
def list_secrets(slug: str):
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


@inbox_cli.command("enforce")
@click.argument("slug")
@click.argument("mode", type=click.Choice(["on", "off"]))
def enforce(slug: str, mode: str):
    """on: answer a mismatched or missing secrettoken with 401 (still recorded)."""
    inbox = _inbox_or_exit(slug)
    inbox.enforce_secret = mode == "on"
    db.session.commit()
    click.echo(f"Inbox {slug!r}: enforce mode {mode}.")


def init_app(app: Flask) -> None:
    app.cli.add_command(setup_command)
    app.cli.add_command(inbox_cli)
