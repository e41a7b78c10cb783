"""Shared pieces of the API views: base schemas and the one way to run a service."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

import flask_smorest
from flask import current_app, request
from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from server.auth import Principal, authenticate
from server.components import components
from server.errors import Invalid
from server.services.unit_of_work import UnitOfWork

P = ParamSpec("P")
T = TypeVar("T")


NOT_BLANK: dict[str, Any] = {
    "pattern": "[^\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"
}
"""Field metadata documenting "not blank": at least one character ``str.strip()`` keeps.

The services strip these fields and refuse what is left empty (422, with every other
finding); the pattern tells clients the same rule, exactly.
"""


MAX_SQL_INTEGER = 2**63 - 1
"""The largest integer SQLite and PostgreSQL take (a larger OFFSET was a 500)."""


class BaseSchema(Schema):
    """Request bodies refuse unknown fields (no mass assignment of ``status``, ``case_seq`` …)."""

    class Meta:
        unknown = RAISE
        ordered = True


class QuerySchema(Schema):
    """A query string's documented parameters (the blueprint refuses any other first)."""

    class Meta:
        unknown = EXCLUDE
        ordered = True


class PageQuerySchema(QuerySchema):
    """``limit`` and ``offset`` of a list."""

    # validate.Range, not a lambda: marshmallow 4 ignores a validator's False (it must
    # raise), so limit=0 or offset=-1 went through silently clamped, and undocumented.
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_SQL_INTEGER))


_QUERY_KEY = "casetrail.documented_query"
_CONVERTER = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


def _documented_query() -> dict[tuple[str, str], frozenset[str]]:
    """``(path, method) → names`` of the query parameters the OpenAPI document declares."""
    found: dict[tuple[str, str], frozenset[str]] | None = current_app.extensions.get(_QUERY_KEY)
    if found is None:
        api = current_app.extensions["flask-smorest"]["blp_name_to_api"][request.blueprint]
        found = {}
        for path, item in api.spec.to_dict()["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    params = operation.get("parameters", []) + item.get("parameters", [])
                    names = frozenset(p["name"] for p in params if p.get("in") == "query")
                    found[(path, method)] = names
        current_app.extensions[_QUERY_KEY] = found
    return found


def refuse_undocumented_query() -> None:
    """422 for a query parameter the operation does not document.

    A misspelt filter (``?stauts=open``) would otherwise answer the whole list as if it
    were the filtered one. Methods the document does not list (automatic ``OPTIONS``)
    are left to routing.
    """
    if not request.args or request.url_rule is None:
        return
    path = _CONVERTER.sub(r"{\1}", request.url_rule.rule)
    operations = _documented_query()
    documented = operations.get((path, request.method.lower()))
    if documented is None and request.method == "HEAD":  # Flask answers HEAD with the GET view
        documented = operations.get((path, "get"))
    if documented is None:
        return
    unknown = sorted(set(request.args) - documented)
    if unknown:
        listed = ", ".join(unknown)
        raise Invalid(
            f"不支持的查询参数 {listed}，请查阅 /api/v1/docs "
            f"(unknown query parameter {listed}; see /api/v1/docs)",
            {"query": {name: ["未知参数 (unknown parameter)"] for name in unknown}},
        )


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's ``Blueprint`` whose operations refuse undocumented query parameters."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.before_request(refuse_undocumented_query)


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
