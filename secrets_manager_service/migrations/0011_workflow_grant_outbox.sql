-- The workflow engine's grants on their way out of a change's transaction (workflows/grant_outbox.py).
-- Every grant change (start, a FLOATING grant's first use, end on revoke, deletion, expiry)
-- writes one row here in the transaction that makes it: the whole grant's state as the Vault is
-- to hold it. A sender delivers the rows to the Vault in id order (the id is the state's
-- `sequence` there), retrying while the Vault is unreachable; a row that ends a grant also waits
-- for the worker's sweep to end the checkouts that needed the grant.
CREATE TABLE wf_grant_outbox (
    id              bigserial PRIMARY KEY,
    request_id      uuid NOT NULL,
    state           jsonb NOT NULL,     -- the PUT /grants/{request_id} body without its sequence
    created         timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt    timestamptz NOT NULL DEFAULT now(),
    delivered       timestamptz,
    refused         timestamptz,        -- the Vault refused it as malformed (4xx): never retried
    last_error      text,
    checkouts_swept timestamptz         -- an end: when its checkouts were ended (else set at once)
);
CREATE INDEX wf_grant_outbox_undelivered ON wf_grant_outbox (id) WHERE delivered IS NULL AND refused IS NULL;
CREATE INDEX wf_grant_outbox_unswept ON wf_grant_outbox (id) WHERE checkouts_swept IS NULL;
-- The sweep that ends expired grants finds them by their end.
CREATE INDEX wf_requests_grant_ends ON wf_requests (grant_end) WHERE status = 'APPROVED' AND grant_ended IS NULL;
