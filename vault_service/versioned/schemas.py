"""Request and response shapes of the versioned API."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from common.durations import Duration, go_format
from common.schemas import BoundedList, Integer, RequestBody, StrictInteger
from common.timefmt import Rfc3339
from vault_service.secrets.schemas import SecretData

MAX_CUSTOM_METADATA_KEYS = 64
MAX_VERSIONS_LISTED = 1000  # version numbers one request may name (both protocols)


class VersionArgs(Schema):
    version = Integer(validate=validate.Range(min=1))


class WriteOptions(RequestBody):
    cas = StrictInteger(validate=validate.Range(min=0))


class WriteBody(RequestBody):
    data = SecretData(required=True)
    options = fields.Nested(WriteOptions, load_default=dict)


class VersionMeta(Schema):
    version = fields.Integer()
    created = Rfc3339()
    deletion_time = Rfc3339()
    destroyed = fields.Boolean()


class VersionDetail(Schema):
    version = fields.Integer()
    created = Rfc3339()
    created_by = fields.String()
    deletion_time = Rfc3339()
    destroyed = fields.Boolean()


class ReadResponse(Schema):
    data = fields.Dict()
    metadata = fields.Nested(VersionMeta)


class VersionsBody(RequestBody):
    versions = BoundedList(StrictInteger(validate=validate.Range(min=1)), max_items=MAX_VERSIONS_LISTED, required=True,
                           validate=validate.Length(min=1, error=f"VALUE_OUT_OF_BOUNDS: versions must list 1 to {MAX_VERSIONS_LISTED} version numbers"))


class MetadataBody(RequestBody):
    max_versions = StrictInteger(validate=validate.Range(min=0, max=10000))
    delete_version_after = Duration()
    cas_required = fields.Boolean(truthy={True}, falsy={False})
    custom_metadata = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=128)),
                                  values=fields.String(validate=validate.Length(max=512)))

    @validates("custom_metadata")
    def _bounded(self, value, **kwargs):
        if len(value) > MAX_CUSTOM_METADATA_KEYS:
            raise ValidationError(f"VALUE_OUT_OF_BOUNDS: custom_metadata may have at most {MAX_CUSTOM_METADATA_KEYS} keys")


class SecretSettings(Schema):
    created = Rfc3339()
    created_by = fields.String()
    updated = Rfc3339()
    updated_by = fields.String()
    current_version = fields.Integer()
    oldest_version = fields.Integer()
    max_versions = fields.Integer()
    delete_version_after = Duration(formatter=go_format)
    cas_required = fields.Boolean()
    custom_metadata = fields.Dict()


class MetadataResponse(Schema):
    metadata = fields.Nested(SecretSettings)
    versions = fields.List(fields.Nested(VersionDetail))


class KeysResponse(Schema):
    keys = fields.List(fields.String())


# 1 to 2147483647 (versions are int32), or "" for the first page, as a JSON Schema pattern
# for the OpenAPI document too.
PAGE_TOKEN_PATTERN = (r"^(?:|[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}|2147[0-3][0-9]{5}"
                      r"|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}|21474836[0-3][0-9]|214748364[0-7])$")


class VersionPageArgs(Schema):
    page_size = Integer(load_default=100, validate=validate.Range(min=1, max=1000))
    page_token = fields.String(validate=validate.Length(max=100), metadata={"pattern": PAGE_TOKEN_PATTERN})


class VersionPage(Schema):
    versions = fields.List(fields.Nested(VersionDetail))
    next_page_token = fields.String(allow_none=True)
