-- The workflow engine (docs/API.md "Workflow engine"): workflows, access requests and their
-- grants, the engine's settings, and the names of the roles and users the suite has seen.

-- A workflow: who may ask for which roles, and who approves, in 1 to 3 steps. Its rules are
-- one JSON document (the PrivX Workflow's fields), checked by workflows/schemas.py.
CREATE TABLE wf_workflows (
    id         uuid PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    doc        jsonb NOT NULL,  -- steps, target_roles, requester_roles, grant_types, limits, comment
    created    timestamptz NOT NULL DEFAULT now(),
    updated    timestamptz NOT NULL DEFAULT now(),
    created_by text NOT NULL,
    updated_by text NOT NULL
);

-- A request for a role. Its steps are a copy of the workflow's when it was made, each approver
-- entry with its decision. workflow_id is NULL once the workflow is deleted (its grants ended).
CREATE TABLE wf_requests (
    id                 uuid PRIMARY KEY,
    workflow_id        uuid REFERENCES wf_workflows (id) ON DELETE SET NULL,
    requester_id       text NOT NULL,
    requester_name     text NOT NULL,
    target_user_id     text NOT NULL,
    target_user_name   text NOT NULL,
    role_id            text NOT NULL,
    role_name          text NOT NULL,
    justification      text NOT NULL,
    comment            text NOT NULL,
    grant_type         text NOT NULL CHECK (grant_type IN ('PERMANENT', 'TIME_RESTRICTED', 'FLOATING')),
    grant_start        timestamptz,     -- FLOATING: set at first use
    grant_end          timestamptz,     -- PERMANENT: NULL
    floating_length    integer NOT NULL DEFAULT 0,  -- hours
    status             text NOT NULL CHECK (status IN ('WAITING', 'APPROVED', 'DENIED')),
    steps              jsonb NOT NULL,
    revoked            boolean NOT NULL DEFAULT false,
    revoked_at         timestamptz,
    revoked_by_id      text,
    revoked_by_name    text,
    grant_ended        timestamptz,     -- when the grant ended early (revoke, deletion of its workflow)
    created            timestamptz NOT NULL DEFAULT now(),
    updated            timestamptz NOT NULL DEFAULT now(),
    updated_by         text NOT NULL
);
CREATE INDEX wf_requests_requester ON wf_requests (requester_id, created);
CREATE INDEX wf_requests_target ON wf_requests (target_user_id, created);
CREATE INDEX wf_requests_workflow ON wf_requests (workflow_id) WHERE status = 'WAITING';
-- The grant check's lookup: a user's approved requests whose grant has not ended early.
CREATE INDEX wf_requests_grants ON wf_requests (target_user_id) WHERE status = 'APPROVED' AND grant_ended IS NULL;

-- The engine's settings: one row. The SMTP password is kept apart from the readable document.
CREATE TABLE wf_settings (
    id            smallint PRIMARY KEY CHECK (id = 1),
    doc           jsonb NOT NULL,
    smtp_password text NOT NULL DEFAULT '',
    updated       timestamptz NOT NULL DEFAULT now(),
    updated_by    text NOT NULL
);

-- Names the suite has seen in tokens: role names for workflows, users and their roles for
-- display names and notifications (an approver role's members).
CREATE TABLE wf_roles (
    id   text PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE wf_users (
    id       text PRIMARY KEY,
    name     text NOT NULL,
    email    text,
    role_ids text[] NOT NULL,
    seen     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX wf_users_roles ON wf_users USING gin (role_ids);
