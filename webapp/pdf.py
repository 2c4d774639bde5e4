"""HTML to PDF with WeasyPrint, fetching nothing but the app's own static files.

A report contains text written by raters; even escaped, a renderer that follows any URL
is one bug away from reading ``file:///etc/passwd`` or probing the internal network
(DESIGN §7). :class:`StaticOnlyFetcher` serves ``<origin>/static/…`` from the static
folder, allows ``data:`` and refuses everything else.
"""

from __future__ import annotations

import base64
import binascii
import functools
import gc
import mimetypes
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flask import Flask
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

__all__ = ["StaticOnlyFetcher", "UnsafeURL", "font_config", "html_to_pdf", "render_pdf"]

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
            return _base64_data(url) or super().fetch(url, headers)
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


def _base64_data(url: str) -> URLFetcherResponse | None:
    """A ``data:<type>;base64,…`` URL decoded directly (the report's charts, see
    :mod:`webapp.charts`); ``None`` for any other form, left to urllib.

    urllib's ``data:`` handler builds an e-mail message per URL; a report has ~30 charts.
    """
    head, comma, payload = url.partition(",")
    mime, _, encoding = head[len("data:") :].partition(";")
    if not comma or encoding != "base64" or not _MIME.fullmatch(mime):
        return None
    try:
        body = base64.b64decode(payload, validate=True)
    except binascii.Error:
        return None
    return URLFetcherResponse(url, body, {"Content-Type": mime})


_MIME = re.compile(r"[a-z]+/[a-z0-9.+-]+")


@functools.cache
def font_config() -> FontConfiguration:
    """One FontConfiguration per process: building it scans the system's fonts."""
    return FontConfiguration()


def html_to_pdf(
    html: str, app: Flask, stylesheets: Sequence[CSS] = (), *, pause_gc: bool = False
) -> bytes:
    """Render ``html`` (a complete document) to PDF bytes.

    ``stylesheets`` are parsed :class:`weasyprint.CSS` objects (made with this process's
    :func:`font_config`); passing a sheet parsed once beats a ``<style>`` re-parsed per
    document.
    """
    fetcher = StaticOnlyFetcher(app.static_folder or "static", app.static_url_path or "/static")
    return render_pdf(html, fetcher, stylesheets, pause_gc=pause_gc)


def render_pdf(
    html: str, fetcher: URLFetcher, stylesheets: Sequence[CSS] = (), *, pause_gc: bool = False
) -> bytes:
    """:func:`html_to_pdf` without a Flask app: what batch workers call.

    ``pause_gc`` keeps Python's cyclic GC off during the render and sweeps once afterwards.
    WeasyPrint allocates hundreds of thousands of objects per report; left on, the GC runs
    full collections over the whole heap in the middle of it, which cost about a quarter
    of a typical report's render time. The sweep afterwards is of the two young
    generations only: with the GC off nothing is promoted, so generation 0 holds exactly
    what this render allocated, and generation 1 what survived the previous one (the
    caches WeasyPrint replaces; sweeping it too keeps memory flat). The rest of a web
    process's heap (app, ORM, caches) is not walked again for every PDF: a full sweep
    there cost 0.1–0.3 s a report. Workers also ``gc.freeze()`` their start-up objects.
    The switch is process-wide: in a threaded server another thread's render started
    meanwhile simply runs with the GC off too (it is switched back on when the first
    render ends), which is harmless.
    """
    document = HTML(string=html, base_url=PDF_ORIGIN + "/", url_fetcher=fetcher)
    if not pause_gc or not gc.isenabled():
        pdf = document.write_pdf(font_config=font_config(), stylesheets=list(stylesheets))
    else:
        gc.disable()
        try:
            pdf = document.write_pdf(font_config=font_config(), stylesheets=list(stylesheets))
        finally:
            gc.enable()
            gc.collect(1)
    assert pdf is not None
    return pdf
