"""The printable annual-report page: one standalone template, rendered here with Jinja2.

The same HTML serves the public site (``/public/reports/annual``, stylesheet linked, strict
CSP) and ``casetrail report annual`` (stylesheet inlined, so the file stands alone and
prints or converts to PDF anywhere). Charts are SVG drawn on the server: no script.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from server.services.annual_report import AnnualReport
from server.services.annual_report_xlsx import SECTION_ZH, section_rows

HERE = Path(__file__).parent
CSS_FILE = HERE / "static" / "public" / "report.css"


@cache
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_annual_html(
    report: AnnualReport,
    *,
    css_href: str | None = None,
    links: dict[str, str] | None = None,
) -> str:
    """The page; without ``css_href`` the stylesheet is inlined (a standalone file)."""
    return (
        _env()
        .get_template("report/annual.html")
        .render(
            r=report,
            data=report.to_json(),
            charts=report.charts(),
            css_href=css_href,
            inline_css=None if css_href else CSS_FILE.read_text("utf-8"),
            sections=SECTION_ZH,
            rows={name: section_rows(section) for name, section in report.sections.items()},
            links=links or {},
        )
    )
