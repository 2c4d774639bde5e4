"""HTML to PDF with WeasyPrint, fetching nothing but the app's own static files.

A report contains text written by raters; even escaped, a renderer that follows any URL
is one bug away from reading ``file:///etc/passwd`` or probing the internal network
(DESIGN §7). :class:`StaticOnlyFetcher` serves ``<origin>/static/…`` from the static
folder, allows ``data:`` and refuses everything else.
"""

from __future__ import annotations

import functools
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import Flask
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

__all__ = ["StaticOnlyFetcher", "UnsafeURL", "font_config", "html_to_pdf"]

#: Origin the report HTML is resolved against; relative ``/static/…`` URLs land here.
PDF_ORIGIN = "https://report.feedback360.invalid"


class UnsafeURL(ValueError):
    """A URL the PDF renderer may not fetch."""


class StaticOnlyFetcher(URLFetcher):
    """WeasyPrint URL fetcher: ``data:`` URLs and the app's static files, nothing else."""

    def __init__(self, static_folder: str | Path, static_url_path: str = "/static") -> None:
        super().__init__(timeout=1, allow_redirects=False, fail_on_errors=False)
        self.root = Path(static_folder).resolve()
        self.prefix = static_url_path.rstrip("/") + "/"

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme == "data":
            return super().fetch(url, headers)
        parts = urlsplit(url)
        origin = urlsplit(PDF_ORIGIN)
        if (parts.scheme, parts.netloc) != (origin.scheme, origin.netloc):
            raise UnsafeURL(f"refused to fetch {url!r}: only the app's static files")
        path = unquote(parts.path)
        if not path.startswith(self.prefix):
            raise UnsafeURL(f"refused to fetch {url!r}: not under {self.prefix}")
        target = (self.root / path[len(self.prefix) :]).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            raise UnsafeURL(f"refused to fetch {url!r}: no such static file")
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, target.read_bytes(), {"Content-Type": mime})


@functools.cache
def font_config() -> FontConfiguration:
    """One FontConfiguration per process: building it scans the system's fonts."""
    return FontConfiguration()


def html_to_pdf(html: str, app: Flask) -> bytes:
    """Render ``html`` (a complete document) to PDF bytes."""
    fetcher = StaticOnlyFetcher(app.static_folder or "static", app.static_url_path or "/static")
    document = HTML(string=html, base_url=PDF_ORIGIN + "/", url_fetcher=fetcher)
    pdf = document.write_pdf(font_config=font_config())
    assert pdf is not None
    return pdf
