-- Credential binding (drivers/binding.py; docs/API.md "Credential binding"): every stored password
-- carries the fingerprint of the endpoint(s) it was set for, and no driver sends it anywhere else.
-- Rows stored before this migration are taken as set for their endpoint as it is now.
--
-- The fingerprint, as drivers.binding._digest computes it:
--   sha256hex('v1:' || kind || E'\n' || concat_ws(E'\n', sha256hex(part1), sha256hex(part2), ...))
-- with sha256hex(t) = encode(sha256(convert_to(t, 'UTF8')), 'hex');
-- host parts: protocol, address, port, certificate_validation_options ('' if none);
-- directory parts: ldap_protocol, ldap_address, ldap_port, ldap_root_certificates,
-- ldap_skip_strict_cert_check ('true'|'false'), ldap_bind_dn.

-- A host account's password: the host endpoint it was set for (NULL: none stored yet).
ALTER TABLE sm_accounts ADD COLUMN bound_endpoint text;

UPDATE sm_accounts a
   SET bound_endpoint = encode(sha256(convert_to('v1:host' || E'\n' || concat_ws(E'\n',
           encode(sha256(convert_to(h.protocol, 'UTF8')), 'hex'),
           encode(sha256(convert_to(h.address, 'UTF8')), 'hex'),
           encode(sha256(convert_to(h.port::text, 'UTF8')), 'hex'),
           encode(sha256(convert_to(coalesce(h.certificate_validation_options, ''), 'UTF8')), 'hex')),
       'UTF8')), 'hex')
  FROM sm_hosts h
 WHERE h.id = a.host_id;

-- A managed directory account's password: the domain's endpoints it was set for (NULL: none stored yet).
ALTER TABLE sm_td_managed_accounts ADD COLUMN bound_endpoints text[];

UPDATE sm_td_managed_accounts m
   SET bound_endpoints = coalesce((
       SELECT array_agg(encode(sha256(convert_to('v1:ldap' || E'\n' || concat_ws(E'\n',
                  encode(sha256(convert_to(e->>'ldap_protocol', 'UTF8')), 'hex'),
                  encode(sha256(convert_to(e->>'ldap_address', 'UTF8')), 'hex'),
                  encode(sha256(convert_to(e->>'ldap_port', 'UTF8')), 'hex'),
                  encode(sha256(convert_to(coalesce(e->>'ldap_root_certificates', ''), 'UTF8')), 'hex'),
                  encode(sha256(convert_to(CASE WHEN (e->>'ldap_skip_strict_cert_check')::boolean
                                                THEN 'true' ELSE 'false' END, 'UTF8')), 'hex'),
                  encode(sha256(convert_to(e->>'ldap_bind_dn', 'UTF8')), 'hex')),
              'UTF8')), 'hex') ORDER BY ordinality)
         FROM sm_target_domains d, jsonb_array_elements(d.endpoints) WITH ORDINALITY AS t (e, ordinality)
        WHERE d.id = m.domain_id), '{}');

-- The DN(s) the directory said, at the last DONE scan, that its bind account is (WhoAmI, or the
-- entry an AD name resolved to): onboarding refuses those accounts whatever the spelling.
ALTER TABLE sm_target_domains ADD COLUMN bind_account_dns text[] NOT NULL DEFAULT '{}';
