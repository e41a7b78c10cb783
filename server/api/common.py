"""Shared pieces of the API views: base schemas and the one way to run a service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from flask import request
from marshmallow import EXCLUDE, RAISE, Schema, fields

from server.auth import Principal, authenticate
from server.components import components
from server.services.unit_of_work import UnitOfWork

P = ParamSpec("P")
T = TypeVar("T")


class BaseSchema(Schema):
    """Request bodies refuse unknown fields (no mass assignment of ``status``, ``case_seq`` …)."""

    class Meta:
        unknown = RAISE
        ordered = True


class QuerySchema(Schema):
    """Query strings ignore parameters they do not know (cache busters, tracking)."""

    class Meta:
        unknown = EXCLUDE
        ordered = True


class PageQuerySchema(QuerySchema):
    """``limit`` and ``offset`` of a list."""

    limit = fields.Integer(load_default=50, validate=lambda n: 1 <= n <= 200)
    offset = fields.Integer(load_default=0, validate=lambda n: n >= 0)


def call(
    service: Callable[Concatenate[UnitOfWork, Principal, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Authenticate the request and run ``service`` in one unit of work, committed on success."""
    with components().unit_of_work() as uow:
        principal = authenticate(uow.session, request.headers.get("Authorization"))
        result = service(uow, principal, *args, **kwargs)
        uow.commit()
    return result


def call_anonymous(
    service: Callable[Concatenate[UnitOfWork, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run an unauthenticated ``service`` (device enrolment) in one committed unit of work."""
    with components().unit_of_work() as uow:
        result = service(uow, *args, **kwargs)
        uow.commit()
    return result


def created(body: Any) -> tuple[Any, int]:
    """A 201 response body."""
    return body, 201
