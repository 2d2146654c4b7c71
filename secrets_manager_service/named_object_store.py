"""The store of password policies and script templates, which are kept alike: a table of objects with a unique
name, replaced whole by PUT, that cannot be deleted while a host refers to them."""
from __future__ import annotations

import uuid

import psycopg

from common import errors
from common.db import Database
from common.web import database
from common.db import fetch_page


class NamedObjects:
    """SQL and not-found rules of one such table. `settings` are the columns a client sets (with `name`)."""

    def __init__(self, table: str, settings: tuple[str, ...], *, kind: str):
        self.table, self.settings, self.kind = table, settings, kind
        self._columns = "id, " + ", ".join(settings) + ", created, updated, created_by, updated_by"

    def _name_taken(self) -> errors.ApiError:
        return errors.Conflict(f"a {self.kind} with this name already exists", property="name")

    def _not_found(self) -> errors.ApiError:
        return errors.NotFound(f"{self.kind} not found")

    # --- SQL ------------------------------------------------------------------

    def find(self, db: Database, object_id) -> dict | None:
        with db.cursor() as cur:
            cur.execute(f"SELECT {self._columns} FROM {self.table} WHERE id = %(id)s", {"id": object_id})
            return cur.fetchone()

    def _insert(self, db: Database, object_id, body: dict, by: str) -> None:
        columns = ", ".join(self.settings)
        values = ", ".join(f"%({c})s" for c in self.settings)
        with db.transaction() as cur:
            cur.execute(
                f"""INSERT INTO {self.table} (id, {columns}, created_by, updated_by)
                    VALUES (%(id)s, {values}, %(by)s, %(by)s) ON CONFLICT (name) DO NOTHING""",
                {**body, "id": object_id, "by": by},
            )
            if cur.rowcount == 0:
                raise self._name_taken()

    def _update(self, db: Database, object_id, body: dict, by: str) -> bool:
        assignments = ", ".join(f"{c} = %({c})s" for c in self.settings)
        try:
            with db.transaction() as cur:
                cur.execute(
                    f"UPDATE {self.table} SET {assignments}, updated = now(), updated_by = %(by)s WHERE id = %(id)s",
                    {**body, "id": object_id, "by": by},
                )
                return cur.rowcount == 1
        except errors.Conflict:  # the unique name, translated by the database layer
            raise self._name_taken() from None

    def _delete(self, db: Database, object_id) -> bool:
        with db.transaction() as cur:
            try:
                cur.execute(f"DELETE FROM {self.table} WHERE id = %(id)s", {"id": object_id})
            except psycopg.errors.ForeignKeyViolation:
                # No ON DELETE on the hosts' foreign keys: the database itself refuses.
                raise errors.Conflict(f"the {self.kind} is used by a host") from None
            return cur.rowcount == 1

    # --- operations -------------------------------------------------------

    def create(self, by: str, body: dict) -> uuid.UUID:
        object_id = uuid.uuid4()
        self._insert(database(), object_id, body, by)
        return object_id

    def get(self, object_id) -> dict:
        found = self.find(database(), object_id)
        if found is None:
            raise self._not_found()
        return found

    def replace(self, by: str, object_id, body: dict) -> None:
        if not self._update(database(), object_id, body, by):
            raise self._not_found()

    def delete(self, object_id) -> None:
        """404 if missing; 409 while a host uses it."""
        if not self._delete(database(), object_id):
            raise self._not_found()

    def list_page(self, args: dict) -> dict:
        total, rows = fetch_page(database(), columns=self._columns, source=self.table, where="true",
                                 order=f"name {args['sortdir']}, id", params={},
                                 offset=args["offset"], limit=args["limit"])
        return {"count": total, "items": rows}
