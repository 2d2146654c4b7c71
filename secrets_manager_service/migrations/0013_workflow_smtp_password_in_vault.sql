-- The workflow engine's SMTP password moves into the Vault (workflows/smtp_password.py): the
-- settings row names the version of `workflow-engine/smtp` that holds it. A password stored in
-- plain text before stays in smtp_password until the worker's next pass moves it into the Vault
-- and empties the column (SQL cannot reach the Vault); the column stays for that, and for a
-- replica of the older release still running during a rolling upgrade.
ALTER TABLE wf_settings ADD COLUMN smtp_password_version integer;
COMMENT ON COLUMN wf_settings.smtp_password IS
    'plain text written before 0013; emptied by the worker once the password is in the Vault';
