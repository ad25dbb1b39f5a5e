"""Developer tools on the command line: `flask --app wsgi send-event ...` and `... replay ...`."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import click
from flask import Flask
from flask.cli import with_appcontext

from . import catalog, outbound, relay, sender
from .cli import set_up_if_new
from .extensions import db
from .models import Capture


def _event_name(_ctx, _param, value: str) -> str:
    name = value.strip().upper()
    if name not in catalog.EVENTS:
        raise click.BadParameter(
            f"{value!r} is not a documented event. Valid events: {', '.join(catalog.EVENTS)}."
        )
    return name


def _url(_ctx, _param, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL.")
    return value


def _settings(_ctx, _param, values: tuple[str, ...]) -> list[tuple[str, str]]:
    try:
        return [sender.parse_setting(text) for text in values]
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _key(value: str | None) -> str | None:
    """A key given as '-' is read from standard input, so it stays out of shell history."""
    if value == "-":
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise click.UsageError("No key on standard input.")
    return value


def _secret_choice(secret: str | None, wrong_secret: bool, no_secret: bool) -> str | None:
    chosen = [
        flag
        for flag, given in (
            ("--secret", secret is not None),
            ("--wrong-secret", wrong_secret),
            ("--no-secret", no_secret),
        )
        if given
    ]
    if len(chosen) > 1:
        flags = ", ".join(chosen[:-1]) + " and " + chosen[-1]
        raise click.UsageError(f"{flags} cannot be used together; choose one.")
    if wrong_secret:
        return sender.wrong_secret()
    if secret == "":
        raise click.UsageError("--secret is empty; use --no-secret to send none.")
    return _key(secret)


@click.command("send-event")
@click.argument("event", callback=_event_name)
@click.option("--to", "target", required=True, callback=_url, help="The URL to send it to.")
@click.option("--secret", default=None, help="The secrettoken to send ('-': read stdin).")
@click.option("--wrong-secret", is_flag=True, help="Send a random secrettoken.")
@click.option("--no-secret", is_flag=True, help="Send no secrettoken (also the default).")
@click.option(
    "--as",
    "encoding",
    type=click.Choice(sender.ENCODINGS),
    default="form",
    show_default=True,
    help="A form body, a JSON body, or the query string of an empty POST.",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_settings,
    help="Replace or add a parameter; repeatable.",
)
@click.option("--count", default=1, type=click.IntRange(min=1), help="How many to send.")
@click.option("--concurrency", default=1, type=click.IntRange(min=1), help="How many at a time.")
@click.option("--timeout", default=10.0, type=click.FloatRange(min=0, min_open=True))
def send_event(
    event, target, secret, wrong_secret, no_secret, encoding, settings, count, concurrency, timeout
):
    """Send a realistic delivery of EVENT, one of the platform's documented events.

    Prints the status, latency and response body; with --count, a summary. Exits 1
    when any delivery was not answered with a 2xx status.
    """
    secret = _secret_choice(secret, wrong_secret, no_secret)

    def deliver(_n: int = 0):
        delivery = sender.build(event, secret=secret, encoding=encoding, settings=settings)
        return sender.send(delivery, target, timeout)

    if count == 1:
        _show_one(deliver(), target)
        return
    with (
        ThreadPoolExecutor(max_workers=min(concurrency, count)) as pool,
        click.progressbar(length=count, label="Sending", file=sys.stderr) as progress,
    ):
        outcomes = []
        for outcome in pool.map(deliver, range(count)):
            outcomes.append(outcome)
            progress.update(1)
    _show_summary(sender.summarize(outcomes), target)


def _show_one(outcome: outbound.Outcome, target: str) -> None:
    if outcome.status is None:
        raise click.ClickException(f"Could not reach {target}: {outcome.error}")
    click.echo(f"{outcome.status} in {outcome.latency_ms:.1f} ms")
    if outcome.body:
        click.echo(outcome.body.decode("utf-8", errors="replace"))
    if not outcome.ok:
        click.get_current_context().exit(1)


def _show_summary(summary: sender.Summary, target: str) -> None:
    click.echo(f"{summary.sent} sent to {target}: {summary.ok} ok, {summary.failed} failed")
    for status, n in sorted(summary.statuses.items()):
        click.echo(f"  status {status}: {n}")
    for error, n in summary.errors.most_common():
        click.echo(f"  error ({n}): {error}")
    if summary.latency_ms:
        shown = ", ".join(f"{name} {ms:.1f}" for name, ms in summary.latency_ms.items())
        click.echo(f"Latency (ms): {shown}")
    if summary.failed:
        click.get_current_context().exit(1)


@click.command("replay")
@click.argument("capture_id", type=int)
@click.option("--to", "target", required=True, help="The URL to send the capture to.")
@click.option("--with-subpath", is_flag=True, help="Append the capture's sub-path to the URL.")
@click.option(
    "--secret",
    default=None,
    help="Put this key where the secrettoken was masked, for this request only ('-': stdin).",
)
@with_appcontext
def replay_command(capture_id: int, target: str, with_subpath: bool, secret: str | None):
    """Send a stored capture again: same method, headers and body bytes.

    Needs RECEIVER_OUTBOUND_ENABLED, and the target inside RECEIVER_OUTBOUND_ALLOW.
    """
    set_up_if_new()
    capture = db.session.get(Capture, capture_id)
    if capture is None:
        raise click.ClickException(f"No capture with id {capture_id}.")
    try:
        attempt = relay.replay(capture, target, with_subpath=with_subpath, secret=_key(secret))
    except (outbound.Refused, ValueError) as error:
        raise click.ClickException(f"Not sent: {error}") from None
    _show_attempt(attempt)


def _show_attempt(attempt) -> None:
    if attempt.status is None:
        raise click.ClickException(f"{attempt.target}: {attempt.error}")
    click.echo(f"{attempt.status} from {attempt.target} in {attempt.latency_ms:.1f} ms")
    if attempt.error:
        click.echo(attempt.error)
    if attempt.response_body:
        click.echo(attempt.response_body.decode("utf-8", errors="replace"))


def init_app(app: Flask) -> None:
    app.cli.add_command(send_event)
    app.cli.add_command(replay_command)
