"""Request and response shapes of scanned accounts, and the batches and searches managed accounts build on."""
from __future__ import annotations

from datetime import timezone

from marshmallow import Schema, ValidationError, fields, validate

from common.schemas import (CaseInsensitiveChoice, PagingInBody, RequestBody, SERVER_FILLED, body_sortkey, keywords_field,
                            sorted_page_args)
from common.timefmt import Rfc3339
from secrets_manager_service.fields import StrictBoolean, listing_of
from secrets_manager_service.target_domains.domains.schemas import TargetDomainHandle, TargetDomainHandleBody

MAX_BATCH = 100
SCANNED_STATES = ("UNMANAGED", "MANAGED", "REMOVED")


def _time(**kwargs):
    return fields.AwareDateTime(format="iso", default_timezone=timezone.utc, **kwargs)

SCANNED_READ_ONLY = ("id", "username", "email", "full_name", "source_id", "security_id", "additional_data", "state",
                     *SERVER_FILLED)


class ScannedChanges(RequestBody):
    ignored = StrictBoolean()
    comment = fields.String(validate=validate.Length(max=1024))


class ScannedAccountBody(ScannedChanges):
    IGNORED = SCANNED_READ_ONLY

    target_domain = fields.Nested(TargetDomainHandleBody)


class ScannedAccount(Schema):
    id = fields.UUID()
    username = fields.String()
    email = fields.String()
    full_name = fields.String()
    source_id = fields.String()
    security_id = fields.String()
    additional_data = fields.Dict(keys=fields.String(), values=fields.String())
    target_domain = fields.Nested(TargetDomainHandle)
    state = fields.String(metadata={"enum": list(SCANNED_STATES)})
    ignored = fields.Boolean()
    comment = fields.String()
    created = Rfc3339()
    updated = Rfc3339()
    updated_by = fields.String()


ScannedAccountList = listing_of(ScannedAccount, "ScannedAccountList")
ScannedPageArgs = sorted_page_args(("username", "email", "full_name", "state", "created", "updated"), "username")


class AccountSearch(PagingInBody):
    """What searches of scanned and of managed accounts both take."""

    keywords = keywords_field()
    created_after = _time()
    created_before = _time()
    updated_after = _time()
    updated_before = _time()


class ScannedSearchBody(AccountSearch):
    sortkey = body_sortkey(ScannedPageArgs)
    state = CaseInsensitiveChoice(SCANNED_STATES)
    ignored = StrictBoolean()


def _ids(values: list) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("VALUE_DUPLICATE: ids must be distinct")


class Ids(RequestBody):
    ids = fields.List(fields.UUID(), required=True, validate=[validate.Length(min=1, max=MAX_BATCH), _ids],
                      metadata={"uniqueItems": True})


class ScannedBatchEdit(Ids):
    changes = fields.Nested(ScannedChanges, required=True)
