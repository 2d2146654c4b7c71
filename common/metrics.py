"""Prometheus metrics at /metrics, correct under gunicorn's many worker processes.

With PROMETHEUS_MULTIPROC_DIR set (deploy/gunicorn does), every worker writes its samples
to files there and /metrics aggregates them; without it, the process's own registry is
served. Route labels are URL rules (`/secrets/<path:name>`), never concrete paths, so a
secret's name never becomes a label.
"""
from __future__ import annotations

import os
import time

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from common import current

REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
LATENCY = Histogram("http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
POOL = Gauge("db_pool_connections", "Database pool connections by state", ["service", "state"],
             multiprocess_mode="livesum")
CHECKOUTS = Counter("secrets_manager_checkouts_total", "Checkouts by outcome", ["event", "outcome"])
ROTATIONS = Counter("secrets_manager_rotations_total", "Password rotations by protocol and outcome",
                    ["protocol", "outcome"])

ENDPOINT = "metrics"
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

# Refresh pool gauges every this many requests: cheap enough, and never stale for long.
_POOL_SAMPLE_EVERY = 50


def install(app: Flask) -> None:
    service = app.config["SERVICE_NAME"]
    counter = {"n": 0}

    @app.before_request
    def _start_timer():
        current.g().metrics_started = time.perf_counter()

    # Label children by (method, rule[, status]): `labels()` validates and locks on every
    # call, a noticeable share of a small request. Rules and methods are a bounded set.
    latency_of, requests_of = {}, {}

    @app.after_request
    def _observe(response):
        started = current.g().pop("metrics_started", None)
        if started is not None:
            request = current.request()  # not flask.request: a read through it costs 8,000 instructions
            method = request.method if request.method in _METHODS else "OTHER"  # clients choose methods
            rule = request.url_rule
            route = (method, rule.rule if rule is not None else "unmatched")
            latency = latency_of.get(route)
            if latency is None:
                latency = latency_of[route] = LATENCY.labels(service, *route)
            latency.observe(time.perf_counter() - started)
            key = (*route, response.status_code)
            count = requests_of.get(key)
            if count is None:
                count = requests_of[key] = REQUESTS.labels(service, *route, str(response.status_code))
            count.inc()
        counter["n"] += 1
        if counter["n"] % _POOL_SAMPLE_EVERY == 1:
            _sample_pool(app, service)
        return response

    @app.route("/metrics", endpoint=ENDPOINT)
    def metrics():
        _sample_pool(app, service)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def _sample_pool(app: Flask, service: str) -> None:
    stats = app.extensions["db"].pool_stats()
    if stats:
        size, available = stats.get("pool_size", 0), stats.get("pool_available", 0)
        POOL.labels(service, "in_use").set(size - available)
        POOL.labels(service, "idle").set(available)
        POOL.labels(service, "waiting").set(stats.get("requests_waiting", 0))
