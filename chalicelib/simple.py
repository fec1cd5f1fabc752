"""The simple repository API (PEP 503 HTML, PEP 691 JSON): the root page.

Project pages, stage roots and file serving come with the download-side issue."""

from __future__ import annotations

import html
import json

from chalice.app import Response

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
SIMPLE_HTML = "application/vnd.pypi.simple.v1+html"
API_VERSION = "1.4"


def _wants_json(accept: str) -> bool:
    """PEP 691 server-driven negotiation, reduced to the two formats served here."""
    best_json = best_html = -1.0
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media == SIMPLE_JSON:
            best_json = max(best_json, q)
        elif media in (SIMPLE_HTML, "text/html", "*/*"):
            best_html = max(best_html, q)
    return best_json > 0 and best_json > best_html


def simple_root(accept: str, projects: list[str]) -> Response:
    headers = {"Vary": "Accept", "Cache-Control": "max-age=60, public"}
    if _wants_json(accept):
        body = {
            "meta": {"api-version": API_VERSION},
            "projects": [{"name": name} for name in projects],
        }
        return Response(
            json.dumps(body), status_code=200, headers={**headers, "Content-Type": SIMPLE_JSON}
        )
    links = "\n".join(
        f'    <a href="/simple/{html.escape(n)}/">{html.escape(n)}</a><br/>' for n in projects
    )
    page = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
        "    <title>Simple index</title>\n  </head>\n  <body>\n"
        f"{links}\n  </body>\n</html>\n"
    )
    return Response(page, status_code=200, headers={**headers, "Content-Type": SIMPLE_HTML})
