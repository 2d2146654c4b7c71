-- The Secrets Manager's reserved part: host accounts (`hosts/...`) and directory accounts and
-- bind passwords (`targetdomains/...`) move out of the shared namespace into owner_id
-- '/secrets-manager' (vault_service.names.RESERVED_OWNER; no user id of a URL path has a '/'),
-- where only the `service` scope on the versioned API reaches them. Roles mean nothing there:
-- a secret squatted before its host existed loses the roles its squatter gave it.
UPDATE vault_secrets
   SET owner_id = '/secrets-manager', read_roles = '{}', write_roles = '{}'
 WHERE owner_id = '' AND split_part(name, '/', 1) IN ('hosts', 'targetdomains');
