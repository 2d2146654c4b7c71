-- The workflow engine's mail (workflows/mail.py): notifications wait here, written in the same
-- transaction as the request or decision that caused them, and a background sender delivers
-- them, so a mail server that is down or slow never fails or delays a request.
CREATE TABLE wf_mail_outbox (
    id           bigserial PRIMARY KEY,
    request_id   uuid,
    recipients   text[] NOT NULL,
    subject      text NOT NULL,
    body         text NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_attempt timestamptz NOT NULL DEFAULT now(),
    sent         timestamptz,
    failed       timestamptz,   -- gave up after smtp_retry_attempts retries
    last_error   text,
    created      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wf_mail_outbox_due ON wf_mail_outbox (next_attempt) WHERE sent IS NULL AND failed IS NULL;
