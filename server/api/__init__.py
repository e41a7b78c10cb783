"""The HTTP API under ``/api/v1``: thin flask-smorest views over ``server.services``.

Each module exposes a ``Blueprint`` named ``blp`` and is listed in
``server.app.BLUEPRINTS``. Views parse with marshmallow schemas (unknown fields are
refused), authenticate with :func:`server.api.common.principal`, call one service inside
one unit of work, commit, and return a schema-dumped result. They never build error
responses themselves: services raise ``server.errors`` and the app renders them.
"""
