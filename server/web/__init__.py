"""The pages: server-rendered faces over the same services as the JSON API.

Each module here is one group of pages with a Flask ``Blueprint`` named ``bp``, listed
in :data:`server.app.WEB_BLUEPRINTS`: views gather values from ``server.services`` and
render Jinja2 templates from ``server/web/templates/``; static files (our stylesheet and
third-party scripts vendored from npm, pinned, with licence and checksum — never a CDN)
live in ``server/web/static/``. No business rule lives in a view, a template or a
script; the browser capture app is the one place with real client logic.
"""
