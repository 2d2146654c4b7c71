"""One page of a listing with the total count, the way every list of the contract is built."""
from __future__ import annotations

from common.db import Database


def fetch_page(db: Database, *, columns: str, source: str, where: str, order: str, params: dict,
               offset: int, limit: int) -> tuple[int, list[dict]]:
    """(total matching, rows of the page). `source` and `where` are trusted SQL; values go in `params`."""
    query = f"""SELECT {columns}, count(*) OVER () AS total FROM {source}
                 WHERE {where} ORDER BY {order} OFFSET %(offset)s LIMIT %(limit)s"""
    with db.cursor() as cur:
        cur.execute(query, {**params, "offset": offset, "limit": limit})
        rows = cur.fetchall()
        if rows or not offset:
            return (rows[0]["total"] if rows else 0), rows
        # The page is past the end: count separately so `count` stays the total.
        cur.execute(f"SELECT count(*) AS total FROM {source} WHERE {where}", params)
        return cur.fetchone()["total"], []
