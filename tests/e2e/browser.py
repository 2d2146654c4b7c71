"""Headless Chromium (the Debian package) with the network closed to everything but 127.0.0.1.

Every request for another host goes to `OffMachineRecorder`, a proxy on 127.0.0.1 that
answers 403 and writes down what was asked for: a page that tries to load anything from
off the machine (a CDN, a validator badge) shows up in `recorder.requests`. Loopback
addresses bypass the proxy (Chromium's implicit rule), so local pages load normally.
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
import threading

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# The flags that work in this sandbox (no GPU, no user namespaces), and none of Chromium's own
# background traffic (component updates, sync, field trials) that would muddy the record.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
         "--no-pings", "--disable-domain-reliability", "--disable-client-side-phishing-detection",
         "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate"]
# Chromium itself still calls its updater and sign-in service whatever the flags; those are the
# browser's requests, not the page's, and are kept apart (`browser_requests`).
CHROMIUM_SERVICES = ("update.googleapis.com", "accounts.google.com", "clients2.google.com")


class OffMachineRecorder:
    """An HTTP proxy on 127.0.0.1 that refuses every request and records its target."""

    def __init__(self):
        self.requests: list[str] = []  # what the page asked for off the machine
        self.browser_requests: list[str] = []  # Chromium's own services
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "OffMachineRecorder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    head = conn.recv(65536).decode("latin-1")
                    if head:
                        line = head.split("\r\n", 1)[0]  # "CONNECT cdn.example:443 HTTP/1.1"
                        host = re.split(r"[ /:]+", line.split(" ")[1].removeprefix("http://"))[0]
                        (self.browser_requests if host in CHROMIUM_SERVICES else self.requests).append(line)
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass


def rendered_dom(url: str, recorder: OffMachineRecorder, *, budget_ms: int = 20000) -> str:
    """The page's DOM once its scripts and their fetches are done (virtual time), as HTML."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
             f"--proxy-server=http://127.0.0.1:{recorder.port}",
             # Names resolve to nothing but the loopback address, should anything bypass the proxy.
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"chromium failed ({result.returncode}): {result.stderr[-2000:]}")
    return result.stdout


def operations(dom: str) -> set[tuple[str, str]]:
    """(method, path) of every operation Swagger UI rendered."""
    found = set()
    for block in re.finditer(r'<div class="opblock opblock-(\w+)[^"]*"[^>]*>(.*?)data-path="([^"]+)"', dom, re.S):
        found.add((block.group(1).upper(), block.group(3)))
    return found
