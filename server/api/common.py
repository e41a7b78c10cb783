"""Shared pieces of the API views: the base schema and the request's principal."""

from __future__ import annotations

from marshmallow import RAISE, Schema


class BaseSchema(Schema):
    """Every request schema refuses unknown fields (no mass assignment of ``status`` …)."""

    class Meta:
        unknown = RAISE
        ordered = True
