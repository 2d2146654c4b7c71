"""Round trips to PostgreSQL, counted at the protocol level (issue 25: a v2 write takes at most 2).

libpq traces every message a connection sends (F) and receives (B); a round trip is a turn
from sending to receiving, however many statements went in one flight (pipeline mode, a
multi-statement query). Only connections taken from the pool by the calling thread are
traced, so the services' background threads (audit pump, cache refreshes) are not counted.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import threading

from psycopg import pq


class Counter:
    def __init__(self):
        self.round_trips = 0
        self.statements: list[str] = []  # what each flight sent first (Parse or Query), for messages


@contextlib.contextmanager
def counted(pool):
    """Counts the round trips of the connections `pool` (a psycopg_pool pool) hands to this thread
    while the block runs."""
    counter, thread = Counter(), threading.get_ident()
    getconn, putconn = pool.getconn, pool.putconn
    traces: dict[int, tuple] = {}

    def traced_getconn(*args, **kwargs):
        conn = getconn(*args, **kwargs)
        if threading.get_ident() == thread:
            handle = tempfile.TemporaryFile(mode="w+b")
            conn.pgconn.trace(handle.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            # A statement that reaches psycopg's prepare threshold in the counted request is
            # prepared in a round trip of its own, once per connection: not what the request costs
            # once warm, and which request meets it depends on what ran before on that connection
            # (CI's full run met it once). Preparing waits while counting: a prepared statement
            # runs in the flights an unprepared one takes.
            traces[id(conn)] = (conn, handle, conn.prepare_threshold)
            conn.prepare_threshold = None
        return conn

    def traced_putconn(conn, *args, **kwargs):
        traced = traces.pop(id(conn), None)
        if traced is not None:
            conn.pgconn.untrace()  # flushes libpq's buffer into the file
            conn.prepare_threshold = traced[2]
            _count(traced[1], counter)
        return putconn(conn, *args, **kwargs)

    pool.getconn, pool.putconn = traced_getconn, traced_putconn
    try:
        yield counter
    finally:
        del pool.getconn, pool.putconn  # the class's own methods again
        for conn, handle, threshold in traces.values():
            conn.pgconn.untrace()
            conn.prepare_threshold = threshold
            _count(handle, counter)


def _count(handle, counter: Counter) -> None:
    handle.flush()
    os.lseek(handle.fileno(), 0, os.SEEK_SET)
    sending = False
    for line in handle.read().decode(errors="replace").splitlines():
        direction, _, rest = line.partition("\t")
        if direction == "F":
            if not sending:
                counter.statements.append(rest.split("\t", 2)[-1][:120])
            sending = True
        elif direction == "B" and sending:
            counter.round_trips += 1
            sending = False
    handle.close()
