-- `workflow-engine/...` joins the Secrets Manager's reserved part (its SMTP password,
-- vault_service.names.RESERVED_PREFIXES), as 0002 did for hosts and target domains: a shared
-- secret squatted there before loses its roles and moves where only the `service` scope reaches.
UPDATE vault_secrets
   SET owner_id = '/secrets-manager', read_roles = '{}', write_roles = '{}'
 WHERE owner_id = '' AND split_part(name, '/', 1) = 'workflow-engine';
