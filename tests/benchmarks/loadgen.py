"""Load generators for `make bench`: wrk when it is installed, else a bounded Python one.

Both take the same settings (connections, client threads/processes, warm-up, duration)
and return the same `Result`, so every scenario of a run is measured the same way.

The Python generator uses separate processes (the GIL would otherwise make the client
the bottleneck), each with a few threads, each thread with one raw-socket HTTP/1.1
connection that is kept alive when the server allows it (gunicorn's sync workers do
not: they answer `Connection: close`, and wrk reconnects just the same). It is bounded
by a duration and a hard cap on the number of requests, and it counts every non-2xx
answer or socket failure as an error.

This module imports only the standard library: the load processes start fast and do
not carry the app's imports.
"""
from __future__ import annotations

import array
import dataclasses
import itertools
import json
import math
import multiprocessing
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from urllib.parse import urlsplit

# One client setting for every scenario: 16 connections from 2 client threads (wrk) or
# 2 processes x 8 threads (Python), a 1 s warm-up, then the measured run.
PROCESSES = 2
CONNECTIONS = 16
WARMUP_SECONDS = 1.0
TIMEOUT_SECONDS = 10.0
MAX_ERROR_SAMPLES = 3


@dataclasses.dataclass(frozen=True)
class Settings:
    seconds: float = 10.0
    warmup: float = WARMUP_SECONDS
    processes: int = PROCESSES  # wrk: threads (-t)
    connections: int = CONNECTIONS  # wrk: -c; Python: connections per process = connections / processes
    max_requests: int = 500_000  # Python only: hard cap on the measured requests of a scenario
    timeout: float = TIMEOUT_SECONDS


@dataclasses.dataclass(frozen=True)
class Request:
    """One HTTP request, sent again and again."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    @classmethod
    def make(cls, method: str, url: str, headers: dict | None = None, json_body=None) -> Request:
        headers = dict(headers or {})
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        return cls(method, url, tuple(headers.items()), body)

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname, parts.port or 80

    def raw(self) -> bytes:
        parts = urlsplit(self.url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"{self.method} {target} HTTP/1.1", f"Host: {parts.netloc}", "User-Agent: bench-loadgen",
                 "Accept: */*"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.body is not None or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body or b'')}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (self.body or b"")

    # --- the operation protocol (see `Flow`) -------------------------------------------
    def operation(self, worker_index: int):
        raw = self.raw()

        def send(conn: Connection):
            return conn.exchange(raw)

        return send

    def wrk_script(self) -> str:
        headers = "\n".join(f"wrk.headers[{_lua_str(k)}] = {_lua_str(v)}" for k, v in self.headers)
        body = f"wrk.body = {_lua_str(self.body.decode())}" if self.body is not None else ""
        return f"wrk.method = {_lua_str(self.method)}\n{headers}\n{body}\n{_WRK_STATUS_LUA}"


class Flow:
    """A scenario whose unit of work is more than one request (e.g. checkout then release).

    Subclasses give `address`, `operation(worker_index)` returning a callable that takes a
    `Connection` and returns `(status, body)`: the first failing answer, else the last; and, if wrk can
    drive it, `wrk_script()` (Lua); `wrk_script` returning None makes the wrk runner fall
    back to the Python generator for this scenario (the result says so).
    """

    address: tuple[str, int]
    url: str

    def operation(self, worker_index: int):  # pragma: no cover - interface
        raise NotImplementedError

    def wrk_script(self) -> str | None:
        return None


@dataclasses.dataclass
class Result:
    tool: str
    requests: int = 0
    errors: int = 0
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    statuses: dict = dataclasses.field(default_factory=dict)
    error_samples: list = dataclasses.field(default_factory=list)
    capped: bool = False
    note: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class HttpError(Exception):
    pass


class Connection:
    """A minimal HTTP/1.1 client over one socket: keep-alive when allowed, else reconnect."""

    def __init__(self, address: tuple[str, int], timeout: float):
        self.address = address
        self.timeout = timeout
        self.sock: socket.socket | None = None

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def exchange(self, raw: bytes) -> tuple[int, bytes]:
        reused = self.sock is not None
        if self.sock is None:
            self._connect()
        try:
            self.sock.sendall(raw)
            return self._read_response()
        except (ConnectionError, HttpError):
            self.close()
            if not reused:
                raise
        # The server closed an idle kept-alive connection: once more on a new one.
        self._connect()
        self.sock.sendall(raw)
        return self._read_response()

    def _connect(self) -> None:
        self.sock = socket.create_connection(self.address, timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _recv(self) -> bytes:
        return self.sock.recv(65536)

    def _read_response(self) -> tuple[int, bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self._recv()
            if not chunk:
                raise HttpError("connection closed before the response headers")
            buf += chunk
        head, _, body = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            version, status = lines[0].split(" ", 2)[:2]
            status = int(status)
        except ValueError as exc:
            raise HttpError(f"bad status line {lines[0]!r}") from exc
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get("connection", "").lower() == "close" or (
            version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive")
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(body) < length:
                chunk = self._recv()
                if not chunk:
                    raise HttpError("connection closed inside the response body")
                body += chunk
            body = body[:length]
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked(body)
        else:
            while chunk := self._recv():
                body += chunk
            close = True
        if close:
            self.close()
        return status, body

    def _read_chunked(self, buf: bytes) -> bytes:
        out = b""
        while True:
            while b"\r\n" not in buf:
                buf += self._recv_or_fail()
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                buf += self._recv_or_fail()
            if size == 0:
                return out  # trailers are not expected from our servers
            out += buf[:size]
            buf = buf[size + 2:]

    def _recv_or_fail(self) -> bytes:
        chunk = self._recv()
        if not chunk:
            raise HttpError("connection closed inside a chunked body")
        return chunk


# --------------------------------------------------------------------------------------
# The Python generator

def _process_main(work, process_index: int, threads: int, start_at: float, measure_from: float,
                  end_at: float, cap: int, timeout: float, out) -> None:
    """One load process: `threads` connections, each sending `work` until end_at or the cap."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ... with SIGTERM, whatever handler it has
    issued = itertools.count()  # next() is atomic under the GIL: a shared request budget
    lock = threading.Lock()
    latencies = array.array("d")
    statuses: dict[str, int] = {}
    samples: list[str] = []
    state = {"capped": False, "last": measure_from}

    def worker(thread_index: int) -> None:
        conn = Connection(work.address, timeout)
        op = work.operation(process_index * threads + thread_index)
        local_lat = array.array("d")
        local_status: dict[str, int] = {}
        local_samples: list[str] = []
        last = measure_from
        while True:
            now = time.monotonic()
            if now < start_at:
                time.sleep(start_at - now)
                continue
            if now >= end_at:
                break
            if now >= measure_from and next(issued) >= cap:  # the cap bounds the measured run
                state["capped"] = True
                break
            began = time.monotonic()
            try:
                status, body = op(conn)
                key = str(status)
                ok = 200 <= status < 300
            except (OSError, HttpError, ValueError) as exc:
                conn.close()
                status, body, key, ok = None, b"", type(exc).__name__, False
                time.sleep(0.01)  # a refused/broken connection must not turn into a busy loop
            finished = time.monotonic()
            if finished < measure_from or finished > end_at:
                continue  # warm-up, or past the end of the run
            last = max(last, finished)
            local_status[key] = local_status.get(key, 0) + 1
            if status is not None:  # like wrk: every answer's latency, socket failures aside
                local_lat.append(finished - began)
            if not ok and len(local_samples) < MAX_ERROR_SAMPLES:
                text = " ".join(body[:300].decode("utf-8", "replace").split()) if body else ""
                local_samples.append(f"{key} {text}".strip())
        conn.close()
        with lock:
            latencies.extend(local_lat)
            for k, v in local_status.items():
                statuses[k] = statuses.get(k, 0) + v
            samples.extend(local_samples[: MAX_ERROR_SAMPLES - len(samples)])
            state["last"] = max(state["last"], last)

    pool = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.put({"latencies": latencies.tobytes(), "statuses": statuses, "samples": samples,
             "capped": state["capped"], "last": state["last"]})


def python_load(work, settings: Settings) -> Result:
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    out = ctx.Queue()
    threads = max(1, settings.connections // settings.processes)
    start_at = time.monotonic() + 0.3  # CLOCK_MONOTONIC is system-wide: one start for all
    measure_from = start_at + settings.warmup
    end_at = measure_from + settings.seconds
    cap = math.ceil(settings.max_requests / settings.processes)
    procs = [ctx.Process(target=_process_main, daemon=True,
                         args=(work, i, threads, start_at, measure_from, end_at, cap, settings.timeout, out))
             for i in range(settings.processes)]
    reports = []
    try:
        for proc in procs:
            proc.start()
        deadline = end_at + settings.timeout + 30
        while len(reports) < len(procs):
            try:
                reports.append(out.get(timeout=max(0.1, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() > deadline or not any(p.is_alive() for p in procs):
                    raise RuntimeError("load processes did not report") from None
        for proc in procs:
            proc.join(timeout=5)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    latencies = array.array("d")
    statuses: dict[str, int] = {}
    samples: list[str] = []
    for report in reports:
        latencies.frombytes(report["latencies"])
        for k, v in report["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
        samples += report["samples"]
    capped = any(r["capped"] for r in reports)
    # When the cap ends the run early, rate over the time actually run.
    window = (max(r["last"] for r in reports) - measure_from) if capped else settings.seconds
    total = sum(statuses.values())
    errors = total - sum(v for k, v in statuses.items() if k.isdigit() and 200 <= int(k) < 300)
    ordered = sorted(latencies)
    return Result(
        tool=f"python ({settings.processes} processes x {threads} threads)",
        requests=total, errors=errors, seconds=round(window, 3),
        rps=round(total / window, 1) if window > 0 else 0.0,
        p50_ms=_percentile_ms(ordered, 50), p99_ms=_percentile_ms(ordered, 99),
        statuses=statuses, error_samples=samples[:MAX_ERROR_SAMPLES], capped=capped,
    )


def _percentile_ms(ordered, pct: float) -> float | None:
    if not ordered:
        return None
    rank = max(1, math.ceil(pct / 100 * len(ordered)))  # nearest rank
    return round(ordered[rank - 1] * 1000, 2)


# --------------------------------------------------------------------------------------
# wrk

# Counts answers by status in each wrk thread and prints the non-2xx ones (and the first
# error body) when the run is done, in lines the runner parses.
_WRK_STATUS_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} ; first_error = "" end
function response(status, headers, body)
  if status < 200 or status > 299 then
    statuses[status] = (statuses[status] or 0) + 1
    if first_error == "" then first_error = tostring(status) .. " " .. string.sub(body or "", 1, 300) end
  end
end
function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do io.write(string.format("BENCH_STATUS %d %d\n", status, n)) end
    local sample = thread:get("first_error")
    if sample ~= "" then io.write("BENCH_SAMPLE " .. string.gsub(sample, "\n", " ") .. "\n") end
  end
end
"""


def _lua_str(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return round(float(number) * _UNITS[unit], 2)


def _wrk(url: str, script: str, seconds: float, settings: Settings) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        path = f.name
    try:
        duration = f"{max(1, round(seconds))}s"
        command = ["wrk", f"-t{settings.processes}", f"-c{settings.connections}", f"-d{duration}", "--latency",
                   f"--timeout={int(settings.timeout)}s", "-s", path, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + settings.timeout + 30)
        if done.returncode != 0:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout
    finally:
        os.unlink(path)


def parse_wrk(output: str, settings: Settings) -> Result:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    if not rps or not total:
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    percentiles = dict(re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.M))
    merged: dict[str, int] = {}
    for s, n in re.findall(r"^BENCH_STATUS (\d+) (\d+)$", output, re.M):
        merged[s] = merged.get(s, 0) + int(n)
    statuses = merged
    samples = re.findall(r"^BENCH_SAMPLE (.*)$", output, re.M)[:MAX_ERROR_SAMPLES]
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    errors = sum(statuses.values())
    if socket_errors:
        names = ("connect", "read", "write", "timeout")
        for name, count in zip(names, map(int, socket_errors.groups()), strict=True):
            if count:
                statuses[f"socket {name}"] = count
                errors += count
    requests = int(total.group(1))
    return Result(
        tool=f"wrk (-t{settings.processes} -c{settings.connections})",
        requests=requests, errors=errors, seconds=_ms(total.group(2) + total.group(3)) / 1000,
        rps=float(rps.group(1)),
        p50_ms=_ms(percentiles["50"]) if "50" in percentiles else None,
        p99_ms=_ms(percentiles["99"]) if "99" in percentiles else None,
        statuses={**{"2xx": requests - sum(v for k, v in statuses.items() if k.isdigit())}, **statuses},
        error_samples=samples,
    )


def wrk_load(work, settings: Settings) -> Result:
    script = work.wrk_script()
    if script is None:
        result = python_load(work, settings)
        result.note = "wrk cannot drive this scenario: measured with the Python generator"
        return result
    if settings.warmup > 0:
        _wrk(work.url, script, settings.warmup, settings)
    return parse_wrk(_wrk(work.url, script, settings.seconds, settings), settings)


def run(work, settings: Settings, tool: str) -> Result:
    """Load `work` (a Request or a Flow) with `tool` ("wrk" or "python")."""
    return wrk_load(work, settings) if tool == "wrk" else python_load(work, settings)
