"""The checkout and rotation rules (accounts.checkouts, accounts.rotations) against a fake account
family and in-memory dependencies: no HTTP, no database, no Vault, in milliseconds. The real
families are covered end to end by the host and directory tests; these pin the rules themselves."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import pytest

from common import errors
from common.auth import Principal
from secrets_manager_service import drivers
from secrets_manager_service.accounts import checkouts, rotations


class Clock:
    def __init__(self):
        self.now = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


class FakeDb:
    """Transactions and cursors that hold nothing: the fakes keep their rows themselves."""

    @contextmanager
    def transaction(self):
        yield None

    @contextmanager
    def cursor(self):
        yield None


class FakeCheckoutStore:
    """sm_checkouts in a list, with a clock of its own."""

    def __init__(self, clock: Clock):
        self.clock, self.rows = clock, []

    def _live(self, row) -> bool:
        return row["ended"] is None and row["expires"] > self.clock.now

    def claim(self, cur, kind, checkout_id, account_id, user_id, *, limit, duration_seconds, holder_role_ids,
              holder_admin, audit_event):
        mine = next((r for r in reversed(self.rows) if r["account_kind"] == kind and r["account_id"] == account_id
                     and r["user_id"] == user_id and self._live(r)), None)
        if mine is not None:
            return {**mine, "existing": True}
        live = sum(1 for r in self.rows if r["account_kind"] == kind and r["account_id"] == account_id and self._live(r))
        if limit and live >= limit:
            return None
        row = {"id": checkout_id, "account_kind": kind, "account_id": account_id, "user_id": user_id,
               "explicit_checkout": True, "created": self.clock.now,
               "expires": self.clock.now + timedelta(seconds=duration_seconds), "ended": None,
               "holder_role_ids": holder_role_ids, "holder_admin": holder_admin}
        self.rows.append(row)
        return {**row, "existing": False}

    def find_live(self, db, checkout_id):
        return next((r for r in self.rows if r["id"] == checkout_id and self._live(r)), None)

    def live_of(self, db, user_id, *, sortdir, limit):
        live = sorted((r for r in self.rows if r["user_id"] == user_id and self._live(r)), key=lambda r: r["created"],
                      reverse=sortdir == "DESC")
        return len(live), live[:limit]

    def end_checkout(self, cur, checkout_id, audit_event):
        row = self.find_live(None, checkout_id)
        if row is None:
            return False
        row["ended"] = self.clock.now
        return True

    def end_expired(self, cur, kind):
        ended = [r for r in self.rows if r["account_kind"] == kind and r["ended"] is None and r["expires"] <= self.clock.now]
        for row in ended:
            row["ended"] = row["expires"]
        return ended


class FakeVault:
    """account_passwords' functions over {path: {version: password}} and a current mark."""

    def __init__(self):
        self.secrets, self.current_of, self.down = {}, {}, False

    def _check(self):
        if self.down:
            raise errors.ApiError("the Vault is unreachable", code="SERVICE_UNAVAILABLE").with_status(503)

    def history(self, path):
        self._check()

        class History:
            current = self.current_of.get(path)
            live = sorted(self.secrets.get(path, {}), reverse=True)
        return History()

    def read_version(self, path, version):
        self._check()
        return None if version is None else self.secrets.get(path, {}).get(version)

    def live_versions(self, path, *, also=None):
        self._check()
        floor = self.current_of.get(path) or 0
        return [{"version": v, "secret": p, "created": None} for v, p in sorted(self.secrets.get(path, {}).items(),
                                                                                  reverse=True) if v <= floor or v == also]

    def store(self, path, password, *, max_versions):
        version = self.write_pending(path, password, current_version=None, max_versions=max_versions)
        self.make_current(path, version, max_versions=max_versions)
        return version

    def write_pending(self, path, password, *, current_version, max_versions):
        self._check()
        versions = self.secrets.setdefault(path, {})
        version = max(versions, default=0) + 1
        versions[version] = password
        return version

    def make_current(self, path, version, *, max_versions):
        self._check()
        self.current_of[path] = version

    def discard(self, path, versions):
        self._check()
        for version in versions:
            self.secrets.get(path, {}).pop(version, None)


class FakeStates:
    def __init__(self):
        self.rows = {}

    def find(self, db, account_id):
        return self.rows.get(account_id)

    def begin(self, db, account_id, rotation_id, *, previous_version, reason):
        self.rows[account_id] = {"account_id": account_id, "rotation_id": rotation_id, "step": "storing",
                                 "previous_version": previous_version, "pending_version": None, "reason": reason,
                                 "updated": None}

    def advance(self, db, account_id, rotation_id, step, *, pending_version=None):
        row = self.rows.get(account_id)
        if row is None or row["rotation_id"] != rotation_id:
            return False
        row["step"] = step
        row["pending_version"] = pending_version or row["pending_version"]
        return True

    def clear(self, cur, account_id, rotation_id=None):
        if rotation_id is None or (self.rows.get(account_id) or {}).get("rotation_id") == rotation_id:
            self.rows.pop(account_id, None)


class FakeTarget:
    """The account's target: the password it accepts; refuses or fails when told to."""

    def __init__(self, password):
        self.password, self.refuse, self.reachable = password, False, True

    def rotate(self, target, new_password):
        if not self.reachable:
            raise drivers.TargetUnreachable("no route")
        if self.refuse:
            raise drivers.RotationFailed("refused", unchanged=True)
        self.password = new_password

    def verify(self, target, password):
        if not self.reachable:
            raise drivers.TargetUnreachable("no route")
        return password == self.password

    def check_bound(self, target):
        pass


class FakeFamily:
    """One kind of account: `accounts` by id, each with its access roles, on one FakeTarget each."""

    kind = "fake"
    no_password_hint = "store one"
    revoke_reason = "no longer allowed"
    release_reason = "release"
    within = "fake_id"

    def __init__(self):
        self.accounts, self.targets, self.queue, self.released, self.results = {}, {}, {}, [], []
        self.states = FakeStates()
        self.store = None  # the world's FakeCheckoutStore: sm_checkouts, which its checkouts are rows of
        self.limits = {"max_concurrent_checkouts": 0, "max_checkout_duration": 3600}

    def add(self, roles=("r",), password="pw-1", vault=None):
        account_id = uuid.uuid4()
        self.accounts[account_id] = {"id": account_id, "access_role_ids": list(roles), "usable": True}
        self.targets[account_id] = FakeTarget(password)
        if vault is not None and password is not None:
            vault.store(self.path(self.accounts[account_id]), password, max_versions=5)
        return account_id

    def claims(self, path):
        return path.startswith("fake/")

    def parse(self, path):
        try:
            return uuid.UUID(path.removeprefix("fake/"))
        except ValueError:
            raise errors.ApiError("bad path", code="VALUE_INCORRECT_FORMAT").with_status(400) from None

    def find_account(self, db, key):
        return self.accounts.get(key)

    def find_checkout(self, db, checkout_id, *, lock=False):
        checkout = self.store.find_live(db, checkout_id)
        if checkout is None or checkout["account_kind"] != self.kind or checkout["account_id"] not in self.accounts:
            return None
        return {**checkout, "account": self.accounts[checkout["account_id"]]}

    def accounts_by_id(self, db, account_ids):
        return {i: self.accounts[i] for i in account_ids if i in self.accounts}

    def usable(self, account):
        return account["usable"]

    def account_id(self, account):
        return account["id"]

    def path(self, account):
        return f"fake/{account['id']}"

    def view(self, account):
        return {"path": self.path(account), "type": "FAKE"}

    def list_accounts(self, db, **kwargs):
        return 0, []

    def lock(self, cur, account_id):
        account = self.accounts.get(account_id)
        return self.limits if account is not None and account["usable"] else None

    def queue_release(self, cur, account_ids):
        self.released += list(account_ids)

    def claim_due(self, cur):
        return next(({"account_id": a, "reason": r, "attempts": 0} for a, r in self.queue.items()), None)

    def subject(self, cur, account_id):
        return {"account_id": account_id, "protocol": "FAKE", "checked_out": False, "retry_interval": 0,
                "number_of_retries": 0, "max_versions": 5, "verify_after_rotation": True, "password_min_length": 12,
                "password_max_length": 12, "use_lower_case": True}

    def subject_path(self, subject):
        return f"fake/{subject['account_id']}"

    def enqueue_scheduled(self, cur):
        return 0

    def record_success(self, cur, account_id, *, subject, interrupted, interrupted_at, reason):
        self.results.append(("success", account_id, interrupted))

    def record_failure(self, cur, account_id, *, subject, details, retry_in, reason):
        self.results.append(("failure", account_id, details))

    def driver(self, subject):
        return self.targets[subject["account_id"]]

    def credentials(self, subject):
        return {}

    def target(self, subject, old_password, credentials):
        return subject["account_id"]

    def adopt_endpoint(self, db, subject, credentials):
        return subject


@pytest.fixture()
def world(monkeypatch):
    # The queue is the family's here; the flow's drops and retries go to it.
    family, clock, vault, audit = FakeFamily(), Clock(), FakeVault(), []
    monkeypatch.setattr(rotations.queue_store, "drop", lambda cur, kind, account_id: family.queue.pop(account_id, None))
    monkeypatch.setattr(rotations.queue_store, "retry_later", lambda cur, kind, account_id, retry_in: None)
    store = family.store = FakeCheckoutStore(clock)
    rotation_deps = rotations.Deps(db=FakeDb(), vault=vault, audit=lambda *a, **k: audit.append(a),
                                   checkpoint=lambda step: None)
    checkout_deps = checkouts.Deps(db=FakeDb(), store=store, vault=vault, audit=lambda *a, **k: audit.append(a),
                                   accepted_pending=lambda fam, account_id: rotations.accepted_pending(
                                       fam, rotation_deps, account_id),
                                   event=lambda action, target, **k: {"action": action, "target": target, **k},
                                   log_event=lambda event: audit.append((event["action"], event["target"])))
    return {"family": family, "clock": clock, "vault": vault, "store": store, "audit": audit,
            "checkouts": checkout_deps, "rotations": rotation_deps}


def user(sub="u1", roles=("r",), admin=False) -> Principal:
    return Principal(sub=sub, scopes=frozenset({"admin"} if admin else {"user"}), role_ids=frozenset(roles))


def test_a_second_checkout_returns_the_live_one_and_the_limit_refuses_others(world):
    family, deps = world["family"], world["checkouts"]
    account = family.add(vault=world["vault"])
    first = checkouts.check_out(family, deps, user(), f"fake/{account}")["items"][0]
    assert first["secrets"][0]["secret"] == "pw-1"
    assert checkouts.check_out(family, deps, user(), f"fake/{account}")["items"][0]["id"] == first["id"]
    family.limits = {**family.limits, "max_concurrent_checkouts": 1}
    with pytest.raises(errors.Conflict):
        checkouts.check_out(family, deps, user("u2"), f"fake/{account}")
    with pytest.raises(errors.NotFound):  # no role: the account does not exist for it
        checkouts.check_out(family, deps, user("u3", roles=("other",)), f"fake/{account}")


def test_no_password_in_the_vault_records_no_checkout(world):
    family, deps = world["family"], world["checkouts"]
    account = family.add(password=None)
    with pytest.raises(errors.ApiError) as raised:
        checkouts.check_out(family, deps, user(), f"fake/{account}")
    assert raised.value.code == "CONFIGURATION_ERROR" and world["store"].rows == []
    world["vault"].down = True
    account = family.add(vault=None)
    with pytest.raises(errors.ApiError):
        checkouts.check_out(family, deps, user(), f"fake/{account}")
    assert world["store"].rows == []


def test_a_holder_who_lost_the_role_finds_the_checkout_over_and_the_release_queued(world):
    family, deps = world["family"], world["checkouts"]
    account = family.add(vault=world["vault"])
    checkout = checkouts.check_out(family, deps, user(), f"fake/{account}")["items"][0]
    family.accounts[account]["access_role_ids"] = ["someone-else"]
    with pytest.raises(errors.NotFound):
        checkouts.get_checkout((family,), deps, user(), checkout["id"])
    assert world["store"].find_live(None, checkout["id"]) is None and family.released == [account]
    assert any(a[0] == "checkout.revoke" for a in world["audit"])


def test_others_do_not_see_a_checkout_and_expiry_ends_it(world):
    family, deps, clock = world["family"], world["checkouts"], world["clock"]
    account = family.add(vault=world["vault"])
    checkout = checkouts.check_out(family, deps, user(), f"fake/{account}")["items"][0]
    with pytest.raises(errors.NotFound):
        checkouts.release((family,), deps, user("u2"), checkout["id"])
    assert checkouts.get_checkout((family,), deps, user("boss", admin=True), checkout["id"])["id"] == checkout["id"]
    clock.now += timedelta(hours=2)
    assert checkouts.expire(family, deps) == 1 and family.released == [account]
    assert checkouts.list_checkouts((family,), deps, user(), {"sortdir": "ASC", "offset": 0, "limit": 10}) == \
        {"count": 0, "items": []}


def test_a_rotation_changes_the_target_and_makes_the_new_password_current(world):
    family, deps, vault = world["family"], world["rotations"], world["vault"]
    account = family.add(vault=vault)
    family.queue[account] = "manual"
    assert rotations.run_one_due(family, deps) == "rotated"
    path = f"fake/{account}"
    assert vault.current_of[path] == 2 and family.targets[account].password == vault.secrets[path][2] != "pw-1"
    assert family.states.rows == {} and family.queue == {}


def test_a_refusing_target_keeps_the_previous_password_current_and_discards_the_pending_one(world):
    family, deps, vault = world["family"], world["rotations"], world["vault"]
    account = family.add(vault=vault)
    family.targets[account].refuse = True
    family.queue[account] = "manual"
    assert rotations.run_one_due(family, deps) == "failed"
    path = f"fake/{account}"
    assert vault.current_of[path] == 1 and list(vault.secrets[path]) == [1] and family.states.rows == {}
    assert family.results[-1][0] == "failure" and family.targets[account].password == "pw-1"


def test_a_rotation_left_after_the_target_took_it_is_finished_by_the_next_pass(world):
    """The write-ahead rule: a worker stopped after the target took the new password leaves a
    state; the next pass asks the target, and makes the pending version current."""
    family, deps, vault = world["family"], world["rotations"], world["vault"]
    account = family.add(vault=vault)
    path = f"fake/{account}"
    pending = vault.write_pending(path, "pw-2", current_version=1, max_versions=5)
    family.targets[account].password = "pw-2"
    family.states.begin(None, account, uuid.uuid4(), previous_version=1, reason="manual")
    family.states.rows[account].update(step="changed", pending_version=pending)
    # Meanwhile a checkout is handed the pending password: the target is known to take it.
    checkout = checkouts.check_out(family, world["checkouts"], user(), path)["items"][0]
    assert [s["version"] for s in checkout["secrets"]] == [2, 1]
    family.queue[account] = "manual"
    assert rotations.run_one_due(family, deps) == "rotated"
    assert vault.current_of[path] == 2 and family.states.rows == {}
    assert "interrupted" in family.results[-1][2]


def test_an_unreachable_target_leaves_the_rotation_unfinished_for_a_later_pass(world):
    family, deps, vault = world["family"], world["rotations"], world["vault"]
    account = family.add(vault=vault)
    path = f"fake/{account}"
    family.states.begin(None, account, uuid.uuid4(), previous_version=1, reason="manual")
    family.states.rows[account].update(step="pending",
                                       pending_version=vault.write_pending(path, "pw-2", current_version=1,
                                                                           max_versions=5))
    family.targets[account].reachable = False
    family.queue[account] = "manual"
    assert rotations.run_one_due(family, deps) == "failed"
    assert family.states.rows[account]["step"] == "pending" and vault.current_of[path] == 1
    assert rotations.UNSETTLED.split(";")[0] in family.results[-1][2]


def test_set_password_ends_a_rotation_under_way_and_discards_its_pending_password(world):
    family, deps, vault = world["family"], world["rotations"], world["vault"]
    account = family.add(vault=vault)
    path = f"fake/{account}"
    family.states.begin(None, account, uuid.uuid4(), previous_version=1, reason="manual")
    family.states.rows[account]["pending_version"] = vault.write_pending(path, "pw-2", current_version=1,
                                                                         max_versions=5)
    version = rotations.store_set_password(family, deps, account, path, "by-hand", max_versions=5)
    assert version == 3 and vault.current_of[path] == 3 and 2 not in vault.secrets[path]


def test_losing_a_role_ends_only_the_checkouts_that_needed_it(world):
    family, deps = world["family"], world["checkouts"]
    needed = family.add(roles=("lost",), vault=world["vault"])
    also_reached = family.add(roles=("lost", "kept"), vault=world["vault"])
    holder = user(roles=("lost", "kept"))
    first = checkouts.check_out(family, deps, holder, f"fake/{needed}")["items"][0]
    second = checkouts.check_out(family, deps, holder, f"fake/{also_reached}")["items"][0]
    assert checkouts.revoke_after_role_loss((family,), deps, "u1", "lost", ["kept"], "grant ended") == 1
    assert world["store"].find_live(None, first["id"]) is None and family.released == [needed]
    assert world["store"].find_live(None, second["id"]) is not None


def test_both_families_and_the_fake_have_every_member_of_the_interface():
    from secrets_manager_service.accounts.directory import DirectoryAccounts
    from secrets_manager_service.accounts.family import AccountFamily
    from secrets_manager_service.accounts.hosts import HostAccounts

    for family in (HostAccounts(), DirectoryAccounts(), FakeFamily()):
        assert isinstance(family, AccountFamily), type(family).__name__


def test_a_listing_merges_the_families_and_narrowing_to_one_leaves_the_others_out(world):
    def listing(kind, within, names):
        class Listed(FakeFamily):
            def list_accounts(self, db, *, within=None, **kwargs):
                rows = [{"path": f"{kind}/{n}", "username": n, "created": None, "updated": None} for n in names]
                return len(rows), rows
        family = Listed()
        family.kind, family.within = kind, within
        return family

    families = (listing("a", "a_id", ["x", "z"]), listing("b", "b_id", ["y"]))
    args = {"sortkey": "username", "sortdir": "ASC", "offset": 0, "limit": 2}

    def page(**within):
        found = checkouts.list_page(families, world["checkouts"], user(), args, within=within)
        return found["count"], [i["path"] for i in found["items"]]

    assert page() == (3, ["a/x", "b/y"])
    assert page(b_id="some") == (1, ["b/y"])
    assert page(a_id="one", b_id="other") == (0, [])
