"""SQL of a list page whose shown columns are computed on the page's rows alone."""
from __future__ import annotations

from common.db import Database, fetch_counted_page

# PostgreSQL computes a SELECT's output columns below its ORDER BY, for every matching row: a
# list's formatted times (to_char) were computed for all 5,000 accounts to show 100. Selected
# from the page's subquery, they are computed for its rows only; a plain scan of a subquery (no
# join, grouping or sort above it) keeps its order.
PAGE = "page"


def paged(columns: str, shown: str, source: str, where: str, order: str, *, total: str | None = None) -> str:
    """The page query: `columns` of `source` (with `total`, the value of the query `total`, default
    the count of `source WHERE where`), sorted and cut, then `shown` (expressions over
    `page.<column>`) and the total."""
    total = total or f"SELECT count(*) FROM {source} WHERE {where}"
    return f"""SELECT {shown}, {PAGE}.total FROM (
                   SELECT {columns}, ({total}) AS total FROM {source}
                    WHERE {where} ORDER BY {order} OFFSET %(offset)s LIMIT %(limit)s) AS {PAGE}"""


def fetch_shown_page(db: Database, *, columns: str, shown: str, source: str, where: str, order: str, params: dict,
                     offset: int, limit: int, total: str | None = None) -> tuple[int, list[dict]]:
    """common.db.fetch_page's (total, rows), the rows' `shown` columns computed on the page's rows
    (`total` as paged's)."""
    total = total or f"SELECT count(*) FROM {source} WHERE {where}"
    return fetch_counted_page(db, paged(columns, shown, source, where, order, total=total),
                              {**params, "offset": offset, "limit": limit}, total_query=f"SELECT ({total}) AS total")
