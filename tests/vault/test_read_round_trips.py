"""A single-secret read and its audit event are one statement (issue 25, point 4): one round trip
to PostgreSQL, counted at the protocol level (tests/round_trips.py), for the v1, v2, KV v2 and
live-version reads. (Each process's grant and ACL policy caches re-read a change counter at most
every 2 s: the reads are counted right after a warm-up read, within that time.)"""
from __future__ import annotations

import pytest

from tests import round_trips
from tests.vault.helpers import V1, unique


@pytest.fixture()
def stored(client, svc, tokens):
    path = unique("rt/read")
    assert client.post(f"{V1}/secret/data/{path}", headers=svc, json={"data": {"password": "p"}}).status_code == 200
    return path


@pytest.mark.parametrize("route", ["v2", "kv", "live"])
def test_a_read_is_one_round_trip(client, svc, tokens, vault_app, stored, route):
    url, headers = {
        "v2": (f"{V1}/secret/data/{stored}", svc),
        "kv": (f"/v1/secret/data/{stored}", {"X-Vault-Token": svc["Authorization"].split()[1], "X-Vault-Request": "true"}),
        "live": (f"{V1}/secret/live/{stored}", svc),
    }[route]
    assert client.get(url, headers=headers).status_code == 200  # warm: caches loaded, token seen
    with round_trips.counted(vault_app.extensions["db"].pool()) as counter:
        answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    assert counter.round_trips == 1, counter.statements
