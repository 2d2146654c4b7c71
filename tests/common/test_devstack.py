"""`make run`'s own checks, without starting the suite (tests/e2e starts it)."""
from __future__ import annotations

import errno
import socket

import pytest

from common.devtools import devstack


def test_a_port_in_time_wait_is_free_and_a_listening_one_is_not():
    """A suite stopped a moment ago leaves its closed connections in TIME-WAIT on its ports for a
    minute; servers (SO_REUSEADDR) listen there again at once, so the check must not say "in use"."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn, slapd and prometheus_client do
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not devstack.port_is_free(port)  # listening: taken
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server's side closes first: it is that side that waits in TIME-WAIT
        client.recv(1)
        client.close()
    with socket.socket() as plain:  # the precondition: a bind without SO_REUSEADDR trips on it
        with pytest.raises(OSError) as refused:
            plain.bind(("127.0.0.1", port))
        assert refused.value.errno == errno.EADDRINUSE
    assert devstack.port_is_free(port)
