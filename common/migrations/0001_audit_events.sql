-- The audit trail both services write: who did what to which object, when, and how it ended.
-- Never a secret value. `service` keeps two services apart if they share a database.
CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    service    text NOT NULL,
    occurred   timestamptz NOT NULL DEFAULT now(),
    request_id text,
    principal  text,
    action     text NOT NULL,
    target     text NOT NULL,
    outcome    text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_by_time ON audit_events (service, occurred DESC, id DESC);
CREATE INDEX audit_events_by_principal ON audit_events (service, principal, occurred DESC);
CREATE INDEX audit_events_by_target ON audit_events (service, target, occurred DESC);
