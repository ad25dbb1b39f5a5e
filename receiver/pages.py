"""The dashboard's pages."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import select

from . import storage
from .extensions import db
from .models import Inbox

bp = Blueprint("pages", __name__)


@bp.get("/")
def home():
    inboxes = db.session.execute(select(Inbox).order_by(Inbox.slug)).scalars().all()
    return render_template("home.html", inboxes=inboxes, totals=storage.inbox_totals())
