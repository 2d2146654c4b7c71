-- The committed steps of a managed directory account's rotation under way: the same shape and
-- rules as sm_rotation_states (see 0002 and rotation/service.py), keyed by the managed account.
CREATE TABLE sm_td_rotation_states (
    managed_account_id uuid PRIMARY KEY REFERENCES sm_td_managed_accounts (id) ON DELETE CASCADE,
    rotation_id        uuid NOT NULL,
    step               text NOT NULL CHECK (step IN ('storing', 'pending', 'changed')),
    previous_version   integer,
    pending_version    integer,
    reason             text NOT NULL,
    started            timestamptz NOT NULL DEFAULT now(),
    updated            timestamptz NOT NULL DEFAULT now()
);

-- As for hosts' checkouts (0002): the roles the holder had when checking out, so that an admin
-- reading someone's checkout can tell whether its holder still may use the account.
ALTER TABLE sm_td_checkouts ADD COLUMN holder_role_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE sm_td_checkouts ADD COLUMN holder_admin boolean NOT NULL DEFAULT false;
