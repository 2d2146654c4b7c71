"""The plans of the page queries a store runs, for tests that a query uses the index made for it."""
from __future__ import annotations

import psycopg


def explained(monkeypatch, store, url: str) -> list[str]:
    """A list that gets the EXPLAIN of each statement `store` runs through fetch_counted_page
    while the test runs (each statement is still run, unchanged)."""
    plans, run = [], store.fetch_counted_page

    def explain_then_run(db, query, params, *, total_query):
        with psycopg.connect(url) as conn:
            plans.append("\n".join(r[0] for r in psycopg.ClientCursor(conn).execute("EXPLAIN " + query, params)))
        return run(db, query, params, total_query=total_query)

    monkeypatch.setattr(store, "fetch_counted_page", explain_then_run)
    return plans
