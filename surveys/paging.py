"""Page arithmetic shared by every paged list (people, release page, cycle page, audit)."""

from __future__ import annotations


def page_count(total: int, per_page: int) -> int:
    """Pages needed for ``total`` items, at least one (an empty list is one empty page)."""
    return max(1, -(-total // per_page))


def clamp_page(page: int, total: int, per_page: int) -> tuple[int, int]:
    """(page, pages): ``page`` moved into 1..pages, so a stale link past the end shows the
    last page and nonsense shows the first.

    >>> clamp_page(99, 250, 100), clamp_page(0, 0, 100)
    ((3, 3), (1, 1))
    """
    pages = page_count(total, per_page)
    return min(max(1, page), pages), pages
