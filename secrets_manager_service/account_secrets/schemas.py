"""Request and response shapes of account secrets and their checkouts."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from common.schemas import PageArgs, PagingInBody, RequestBody, body_sortkey, keywords_field, sorted_page_args
from common.timefmt import Rfc3339
from secrets_manager_service import names
from secrets_manager_service.fields import listing_of

SORT_KEYS = ("path", "username", "created", "updated")

AccountSecretPageArgs = sorted_page_args(SORT_KEYS, "path")
CheckoutPageArgs = PageArgs


class SearchBody(PagingInBody):
    sortkey = body_sortkey(AccountSecretPageArgs)
    keywords = keywords_field()
    host_id = fields.UUID(load_default=None)
    target_domain_id = fields.UUID(load_default=None)  # ours: one target domain's managed accounts
    username = fields.String(load_default=None, validate=validate.Length(min=1, max=256))


class CheckoutBody(RequestBody):
    path = fields.String(required=True, validate=validate.Length(min=1, max=512),
                         metadata={"pattern": names.CHECKOUT_PATH_PATTERN})


class HostRef(Schema):
    id = fields.UUID()
    addresses = fields.List(fields.String())
    common_name = fields.String()
    external_id = fields.String()
    instance_id = fields.String()


class TargetDomainRef(Schema):
    id = fields.UUID()
    name = fields.String()
    deleted = fields.Boolean()


class AccountSecret(Schema):
    path = fields.String()
    type = fields.String(metadata={"enum": ["HOST_SECRET", "TARGET_DOMAIN_SECRET"]})
    username = fields.String()
    email = fields.String()
    full_name = fields.String()
    host = fields.Nested(HostRef)
    target_domain = fields.Nested(TargetDomainRef)
    created = Rfc3339()
    updated = Rfc3339()


class SecretVersion(Schema):
    version = fields.Integer()
    secret = fields.String(allow_none=True)
    created = Rfc3339()


class Checkout(Schema):
    id = fields.UUID()
    path = fields.String()
    type = fields.String(metadata={"enum": ["HOST_SECRET", "TARGET_DOMAIN_SECRET"]})
    expires = Rfc3339()
    created = Rfc3339()
    explicit_checkout = fields.Boolean()
    secrets = fields.List(fields.Nested(SecretVersion))
    username = fields.String()
    email = fields.String()
    full_name = fields.String()
    host = fields.Nested(HostRef)
    target_domain = fields.Nested(TargetDomainRef)
    managed_account_id = fields.UUID()
    user_id = fields.String()


AccountSecretList = listing_of(AccountSecret, "AccountSecretList")
CheckoutList = listing_of(Checkout, "CheckoutList")
