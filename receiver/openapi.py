"""The OpenAPI 3.1 description of the API under /api."""

from __future__ import annotations


def document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Webhook receiver API", "version": "1"},
        "paths": {},
    }
