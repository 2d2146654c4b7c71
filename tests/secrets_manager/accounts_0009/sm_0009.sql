-- Made by tests/secrets_manager/accounts_0009/make_fixture.py (see there) at schema 0009.
-- live host checkouts: 223ac153-eb2b-431a-9510-25da8461de97 0610ab6e-03d3-43a7-a787-71ea27b2903e; ended: 03f53f4f-6fae-419d-9438-86a065f7e9d0 0c49b83b-0c23-46f9-8d56-e122ade66044
-- live directory checkout: 480435e2-d295-4f89-b1f2-2107f44e7fa7; ended: 6dae753a-94e0-4eb6-8431-364c9258aed8
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: sm_password_policies; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_password_policies VALUES ('8287998a-bfbf-4d1b-b86b-724b83dbbc9c', 'policy-63b8d06dd732', 2592000, 20, 24, true, true, true, true, 3, 2, 0, 0, 3600, true, false, '2026-12-05 19:47:26.802617+00', '2026-12-05 19:47:26.802617+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', 'b34fd741-7bb9-42eb-a671-99787004c7a4');
INSERT INTO public.sm_password_policies VALUES ('8dc5cd41-7341-4e19-81fc-8963d94e52a8', 'policy-f82a704deb2c', 2592000, 20, 24, true, true, true, true, 5, 2, 0, 0, 1, false, false, '2026-12-05 19:47:26.929869+00', '2026-12-05 19:47:26.929869+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', 'b34fd741-7bb9-42eb-a671-99787004c7a4');
INSERT INTO public.sm_password_policies VALUES ('33cbc0c5-15b2-4142-82ca-26439d12ce3a', 'policy-68fd1860580b', 2592000, 20, 24, true, true, true, true, 5, 2, 0, 1, 3600, true, true, '2026-12-05 19:47:28.615909+00', '2026-12-05 19:47:28.615909+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', 'b34fd741-7bb9-42eb-a671-99787004c7a4');


--
-- Data for Name: sm_script_templates; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: sm_hosts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_hosts VALUES ('5e1f0c9a-0000-4000-8000-000000000001', '10.0.0.1', 0, 'LINUX', 'NONE', NULL, false, NULL, '8287998a-bfbf-4d1b-b86b-724b83dbbc9c', NULL, '[{"id": "5e1f0c9a-0000-4000-8000-0000000000a1", "name": "fixture-host-role"}]', '{5e1f0c9a-0000-4000-8000-0000000000a1}', '2026-12-05 19:47:26.916317+00', '2026-12-05 19:47:26.916317+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', 'b34fd741-7bb9-42eb-a671-99787004c7a4');
INSERT INTO public.sm_hosts VALUES ('5e1f0c9a-0000-4000-8000-000000000002', '10.0.0.1', 0, 'LINUX', 'NONE', NULL, false, NULL, '8dc5cd41-7341-4e19-81fc-8963d94e52a8', NULL, '[{"id": "5e1f0c9a-0000-4000-8000-0000000000a1", "name": "fixture-host-role"}]', '{5e1f0c9a-0000-4000-8000-0000000000a1}', '2026-12-05 19:47:26.969584+00', '2026-12-05 19:47:26.969584+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', 'b34fd741-7bb9-42eb-a671-99787004c7a4');


--
-- Data for Name: sm_accounts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_accounts VALUES ('f9d2d314-70c6-4925-b362-c2eb925b977d', '5e1f0c9a-0000-4000-8000-000000000001', 'root', NULL, NULL, NULL, NULL, '2026-12-05 19:47:26.916317+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:26.916317+00', '5e1f0c9a-0000-4000-8000-000000000001/root 10.0.0.1', '412ce5606e709169bd0a8a24157610e12767604080962c913f36a8e3745a0e58');
INSERT INTO public.sm_accounts VALUES ('ee942c8f-a2a2-481f-b4d9-6c4105966b3f', '5e1f0c9a-0000-4000-8000-000000000001', 'app', NULL, NULL, NULL, NULL, '2026-12-05 19:47:26.916317+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:26.916317+00', '5e1f0c9a-0000-4000-8000-000000000001/app 10.0.0.1', '412ce5606e709169bd0a8a24157610e12767604080962c913f36a8e3745a0e58');
INSERT INTO public.sm_accounts VALUES ('1222c09d-956f-4390-a26d-8001df97cdee', '5e1f0c9a-0000-4000-8000-000000000001', 'pend', NULL, NULL, NULL, NULL, '2026-12-05 19:47:26.916317+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:26.916317+00', '5e1f0c9a-0000-4000-8000-000000000001/pend 10.0.0.1', '412ce5606e709169bd0a8a24157610e12767604080962c913f36a8e3745a0e58');
INSERT INTO public.sm_accounts VALUES ('d69a3bc6-93c1-46d9-b036-85fe13a82d8c', '5e1f0c9a-0000-4000-8000-000000000002', 'svc', NULL, NULL, NULL, NULL, '2026-12-05 19:47:26.969584+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:26.969584+00', '5e1f0c9a-0000-4000-8000-000000000002/svc 10.0.0.1', '412ce5606e709169bd0a8a24157610e12767604080962c913f36a8e3745a0e58');


--
-- Data for Name: sm_checkouts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_checkouts VALUES ('223ac153-eb2b-431a-9510-25da8461de97', 'f9d2d314-70c6-4925-b362-c2eb925b977d', 'fixture-host-user', true, '2026-12-05 19:47:27.226233+00', '2026-12-05 20:47:27.226233+00', NULL, '{5e1f0c9a-0000-4000-8000-0000000000a1}', false);
INSERT INTO public.sm_checkouts VALUES ('0610ab6e-03d3-43a7-a787-71ea27b2903e', 'f9d2d314-70c6-4925-b362-c2eb925b977d', 'b34fd741-7bb9-42eb-a671-99787004c7a4', true, '2026-12-05 19:47:27.247876+00', '2026-12-05 20:47:27.247876+00', NULL, '{}', true);
INSERT INTO public.sm_checkouts VALUES ('03f53f4f-6fae-419d-9438-86a065f7e9d0', 'ee942c8f-a2a2-481f-b4d9-6c4105966b3f', 'fixture-host-user', true, '2026-12-05 19:47:27.276392+00', '2026-12-05 20:47:27.276392+00', '2026-12-05 19:47:27.283904+00', '{5e1f0c9a-0000-4000-8000-0000000000a1}', false);
INSERT INTO public.sm_checkouts VALUES ('0c49b83b-0c23-46f9-8d56-e122ade66044', 'd69a3bc6-93c1-46d9-b036-85fe13a82d8c', 'fixture-host-user', true, '2026-12-05 19:47:27.304762+00', '2026-12-05 19:47:28.304762+00', '2026-12-05 19:47:28.304762+00', '{5e1f0c9a-0000-4000-8000-0000000000a1}', false);


--
-- Data for Name: sm_rotation_states; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_rotation_states VALUES ('1222c09d-956f-4390-a26d-8001df97cdee', '7fee7ab4-746b-4cbd-a9dd-dc7684c2f52e', 'changed', 1, 2, 'manual', '2026-12-05 19:47:27.132118+00', '2026-12-05 19:47:27.15278+00');


--
-- Data for Name: sm_rotations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_rotations VALUES ('1222c09d-956f-4390-a26d-8001df97cdee', 'manual', '2026-12-05 19:47:26.975903+00', 0, '2026-12-05 19:47:26.975903+00');
INSERT INTO public.sm_rotations VALUES ('ee942c8f-a2a2-481f-b4d9-6c4105966b3f', 'release', '2026-12-05 19:47:27.283904+00', 0, '2026-12-05 19:47:27.283904+00');
INSERT INTO public.sm_rotations VALUES ('d69a3bc6-93c1-46d9-b036-85fe13a82d8c', 'manual', '2026-12-05 19:47:28.517909+00', 0, '2026-12-05 19:47:28.517909+00');


--
-- Data for Name: sm_target_domains; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_target_domains VALUES ('d924fdf0-2ce2-4026-8432-cef70dc47b17', 'domain-6d8b00bb926d', '', true, false, 1440, 'DONE', '4 accounts: 4 new, 0 removed', '2026-12-05 19:47:28.673057+00', '2026-12-05 19:47:28.673057+00', false, '33cbc0c5-15b2-4142-82ca-26439d12ce3a', '[{"type": "LDAP", "ldap_port": 49077, "ldap_address": "127.0.0.1", "ldap_base_dn": "ou=people,dc=example,dc=test", "ldap_bind_dn": "cn=binder,ou=service,dc=example,dc=test", "ldap_protocol": "LDAP", "scan_priority": 0, "ldap_user_filter": "(objectClass=inetOrgPerson)", "attribute_mapping": {"email": "mail", "username": "uid", "full_name": "cn", "source_id": "entryUUID"}, "rotation_priority": 0, "ldap_root_certificates": "", "ldap_skip_strict_cert_check": false}]', '', '2026-12-05 19:47:28.639596+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:28.639596+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '{"cn=binder,ou=service,dc=example,dc=test"}');


--
-- Data for Name: sm_td_accounts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_td_accounts VALUES ('767a3a6a-6e12-4475-8792-9b1a5d975dae', 'd924fdf0-2ce2-4026-8432-cef70dc47b17', '726707aa-8530-1041-8cfb-53baf73dd11b', 'uid=user1,ou=people,dc=example,dc=test', 'user1', 'user1@example.test', 'User user1', '726707aa-8530-1041-8cfb-53baf73dd11b', '', '', '{"dn": "uid=user1,ou=people,dc=example,dc=test"}', false, false, '', '2026-12-05 19:47:28.673057+00', '2026-12-05 19:47:28.673057+00', '');
INSERT INTO public.sm_td_accounts VALUES ('c8eace4f-91ed-49ac-b209-3cf15d1195f3', 'd924fdf0-2ce2-4026-8432-cef70dc47b17', '72670886-8530-1041-8cfc-53baf73dd11b', 'uid=user2,ou=people,dc=example,dc=test', 'user2', 'user2@example.test', 'User user2', '72670886-8530-1041-8cfc-53baf73dd11b', '', '', '{"dn": "uid=user2,ou=people,dc=example,dc=test"}', false, false, '', '2026-12-05 19:47:28.673057+00', '2026-12-05 19:47:28.673057+00', '');
INSERT INTO public.sm_td_accounts VALUES ('3a6f02f7-512b-435c-9584-168ee0582afe', 'd924fdf0-2ce2-4026-8432-cef70dc47b17', '7267093a-8530-1041-8cfd-53baf73dd11b', 'uid=user3,ou=people,dc=example,dc=test', 'user3', 'user3@example.test', 'User user3', '7267093a-8530-1041-8cfd-53baf73dd11b', '', '', '{"dn": "uid=user3,ou=people,dc=example,dc=test"}', false, false, '', '2026-12-05 19:47:28.673057+00', '2026-12-05 19:47:28.673057+00', '');
INSERT INTO public.sm_td_accounts VALUES ('ef025474-b958-4d79-84cc-d775594d7e71', 'd924fdf0-2ce2-4026-8432-cef70dc47b17', '726709e4-8530-1041-8cfe-53baf73dd11b', 'uid=user4,ou=people,dc=example,dc=test', 'user4', 'user4@example.test', 'User user4', '726709e4-8530-1041-8cfe-53baf73dd11b', '', '', '{"dn": "uid=user4,ou=people,dc=example,dc=test"}', false, false, '', '2026-12-05 19:47:28.673057+00', '2026-12-05 19:47:28.673057+00', '');


--
-- Data for Name: sm_td_managed_accounts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_td_managed_accounts VALUES ('a62fc9ba-0eeb-4398-9d88-6589ecaf47c4', 'd924fdf0-2ce2-4026-8432-cef70dc47b17', '767a3a6a-6e12-4475-8792-9b1a5d975dae', '33cbc0c5-15b2-4142-82ca-26439d12ce3a', true, true, true, false, 'ACTIVE', '', '[{"id": "5e1f0c9a-0000-4000-8000-0000000000a2", "name": "fixture-directory-role"}]', '{5e1f0c9a-0000-4000-8000-0000000000a2}', '2026-12-05 19:47:28.708956+00', NULL, NULL, NULL, '2026-12-05 19:47:28.684895+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:28.708956+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '{d7bda44eb97b51ee9c61877168cb4f45cf8c35eab9bedd765e373b1cc8a8b336}');
INSERT INTO public.sm_td_managed_accounts VALUES ('929d6a6d-00c4-4785-ae77-6d137f310b42', 'd924fdf0-2ce2-4026-8432-cef70dc47b17', 'c8eace4f-91ed-49ac-b209-3cf15d1195f3', '33cbc0c5-15b2-4142-82ca-26439d12ce3a', true, true, true, false, 'ACTIVE', '', '[{"id": "5e1f0c9a-0000-4000-8000-0000000000a2", "name": "fixture-directory-role"}]', '{5e1f0c9a-0000-4000-8000-0000000000a2}', '2026-12-05 19:47:28.824069+00', NULL, NULL, NULL, '2026-12-05 19:47:28.695772+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:28.824069+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '{d7bda44eb97b51ee9c61877168cb4f45cf8c35eab9bedd765e373b1cc8a8b336}');
INSERT INTO public.sm_td_managed_accounts VALUES ('b0139b77-869c-4ecf-ab72-6893e52b47da', 'd924fdf0-2ce2-4026-8432-cef70dc47b17', '3a6f02f7-512b-435c-9584-168ee0582afe', '33cbc0c5-15b2-4142-82ca-26439d12ce3a', true, true, true, false, 'ACTIVE', '', '[{"id": "5e1f0c9a-0000-4000-8000-0000000000a2", "name": "fixture-directory-role"}]', '{5e1f0c9a-0000-4000-8000-0000000000a2}', '2026-12-05 19:47:28.931538+00', NULL, NULL, NULL, '2026-12-05 19:47:28.702395+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '2026-12-05 19:47:28.931538+00', 'b34fd741-7bb9-42eb-a671-99787004c7a4', '{d7bda44eb97b51ee9c61877168cb4f45cf8c35eab9bedd765e373b1cc8a8b336}');


--
-- Data for Name: sm_td_checkouts; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_td_checkouts VALUES ('480435e2-d295-4f89-b1f2-2107f44e7fa7', 'a62fc9ba-0eeb-4398-9d88-6589ecaf47c4', 'fixture-directory-user', true, '2026-12-05 19:47:29.225571+00', '2026-12-05 20:47:29.225571+00', NULL, '{5e1f0c9a-0000-4000-8000-0000000000a2}', false);
INSERT INTO public.sm_td_checkouts VALUES ('6dae753a-94e0-4eb6-8431-364c9258aed8', '929d6a6d-00c4-4785-ae77-6d137f310b42', 'fixture-directory-user', true, '2026-12-05 19:47:29.244428+00', '2026-12-05 20:47:29.244428+00', '2026-12-05 19:47:29.252471+00', '{5e1f0c9a-0000-4000-8000-0000000000a2}', false);


--
-- Data for Name: sm_td_rotation_history; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_td_rotation_history VALUES (1, 'a62fc9ba-0eeb-4398-9d88-6589ecaf47c4', 1, '2026-12-05 19:47:28.708956+00', 'ONBOARDING', 'SUCCESS');
INSERT INTO public.sm_td_rotation_history VALUES (2, '929d6a6d-00c4-4785-ae77-6d137f310b42', 1, '2026-12-05 19:47:28.824069+00', 'ONBOARDING', 'SUCCESS');
INSERT INTO public.sm_td_rotation_history VALUES (3, 'b0139b77-869c-4ecf-ab72-6893e52b47da', 1, '2026-12-05 19:47:28.931538+00', 'ONBOARDING', 'SUCCESS');


--
-- Data for Name: sm_td_rotation_states; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_td_rotation_states VALUES ('b0139b77-869c-4ecf-ab72-6893e52b47da', '681ecf9c-471d-438d-9f9a-f9b2e5a4edf9', 'pending', 1, 2, 'MANUAL', '2026-12-05 19:47:29.139485+00', '2026-12-05 19:47:29.169965+00');


--
-- Data for Name: sm_td_rotations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.sm_td_rotations VALUES ('b0139b77-869c-4ecf-ab72-6893e52b47da', 'MANUAL', '2026-12-05 19:47:28.983095+00', 0, '2026-12-05 19:47:28.983095+00');
INSERT INTO public.sm_td_rotations VALUES ('929d6a6d-00c4-4785-ae77-6d137f310b42', 'CHECKOUT_RELEASE', '2026-12-05 19:47:29.252471+00', 0, '2026-12-05 19:47:29.252471+00');


--
-- Data for Name: sm_td_scans; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: sm_td_scan_entries; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: wf_mail_outbox; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: wf_workflows; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: wf_requests; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: wf_roles; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.wf_roles VALUES ('5e1f0c9a-0000-4000-8000-0000000000a1', 'fixture-host-role');
INSERT INTO public.wf_roles VALUES ('5e1f0c9a-0000-4000-8000-0000000000a2', 'fixture-directory-role');


--
-- Data for Name: wf_settings; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: wf_users; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.wf_users VALUES ('b34fd741-7bb9-42eb-a671-99787004c7a4', 'b34fd741-7bb9-42eb-a671-99787004c7a4', NULL, '{}', '2026-12-05 19:47:26.799718+00');
INSERT INTO public.wf_users VALUES ('fixture-host-user', 'fixture-host-user', NULL, '{5e1f0c9a-0000-4000-8000-0000000000a1}', '2026-12-05 19:47:27.196312+00');
INSERT INTO public.wf_users VALUES ('fixture-directory-user', 'fixture-directory-user', NULL, '{5e1f0c9a-0000-4000-8000-0000000000a2}', '2026-12-05 19:47:29.207017+00');


--
-- Name: sm_td_rotation_history_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.sm_td_rotation_history_id_seq', 3, true);


--
-- Name: sm_td_scans_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.sm_td_scans_id_seq', 2, true);


--
-- Name: wf_mail_outbox_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.wf_mail_outbox_id_seq', 1, false);


--
-- PostgreSQL database dump complete
--


