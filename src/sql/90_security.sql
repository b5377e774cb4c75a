-- 90_security.sql: who may read and call what, and what pg_dump carries.
--
-- PUBLIC gets nothing.  Members of nx_user may call the API functions and
-- read the views; no table (I12: see 25_views.sql for why not even with
-- row-level security).  Every view shows only the rows of sandboxes the
-- caller may act on, and every change goes through a function that checks
-- ownership first.  Tenant roles (nx_tenant) get nothing here.
--
-- Row-level security stays enabled on every table, with no policy: should
-- a grant ever slip, a non-owner reading a table sees no row at all.

ALTER TABLE nx.sandboxes ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.sandbox_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.deployments ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.promotions ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.env ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.kept_databases ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.runtime ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.router_heartbeat ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.owners ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.ports ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.uid_slots ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.retired_uid_offsets ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.deployment_secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.branches ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.database_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.over_quota ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON ALL TABLES IN SCHEMA nx FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA nx FROM PUBLIC;
GRANT SELECT ON nx.sandbox_info, nx.status, nx.routes, nx.stat_deployments,
	nx.event_log, nx.env_vars, nx.domain_info, nx.promotion_log,
	nx.kept_database_info TO nx_user;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA nx FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	nx.create_sandbox(text, text, integer, integer, integer, text, interval, integer, name, text, text),
	nx.alter_sandbox(text, text, integer, integer, integer, text, interval, integer, text, text),
	nx.drop_sandbox(text, boolean),
	nx.drop_kept_database(text),
	nx.set_env(text, text, text),
	nx.unset_env(text, text),
	nx.database_url(text, bigint),
	nx.verify_binary(bytea),
	nx.push(text, bytea, text, text[], jsonb, text, text),
	nx.start(bigint),
	nx.stop(bigint),
	nx.restart(bigint),
	nx.remove(bigint),
	nx.start(text, bigint),
	nx.stop(text, bigint),
	nx.restart(text, bigint),
	nx.remove(text, bigint),
	nx.promote(text, bigint, boolean),
	nx.rollback(text, boolean),
	nx.logs(text, bigint, integer),
	nx.wake(bigint),
	nx.add_domain(text, text),
	nx.remove_domain(text, text),
	nx.check_domain(text, text)
TO nx_user;
GRANT EXECUTE ON FUNCTION nx.check_setup(), nx.route_hosts(), nx.approve_domain(text, text) TO nx_admin;
-- the router sees hosts and deployment ids, wakes asleep deployments and
-- reports traffic; nothing else
GRANT USAGE ON SCHEMA nx TO nx_router;
GRANT EXECUTE ON FUNCTION
	nx.router_routes(),
	nx.route_hosts(),
	nx.wake(bigint),
	nx.report_activity(boolean, bigint[], integer[], bigint[], bigint[], bigint[], bigint[])
TO nx_router;
-- the views call these (as the querying role); each returns only the
-- caller's rows
GRANT EXECUTE ON FUNCTION
	nx._sandbox_info_rows(text),
	nx._status_rows(bigint),
	nx._route_rows(),
	nx._stat_deployment_rows(),
	nx._event_log_rows(),
	nx._env_var_rows(),
	nx._domain_info_rows(),
	nx._promotion_log_rows(),
	nx._kept_database_rows()
TO nx_user;

-- pg_dump of this database is the whole platform state (invariant I1).
-- nx.ports and nx.uid_slots are filled at install and nx.runtime,
-- nx.activity, nx.router_heartbeat, nx.retired_uid_offsets,
-- nx.branches, nx.database_usage and nx.over_quota are derived state: not
-- dumped.
SELECT pg_catalog.pg_extension_config_dump('nx.sandboxes', '');
SELECT pg_catalog.pg_extension_config_dump('nx.sandbox_secrets', '');
SELECT pg_catalog.pg_extension_config_dump('nx.blobs', '');
SELECT pg_catalog.pg_extension_config_dump('nx.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('nx.deployments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nx.promotions', '');
SELECT pg_catalog.pg_extension_config_dump('nx.promotions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nx.env', '');
SELECT pg_catalog.pg_extension_config_dump('nx.domains', '');
SELECT pg_catalog.pg_extension_config_dump('nx.kept_databases', '');
SELECT pg_catalog.pg_extension_config_dump('nx.events', '');
SELECT pg_catalog.pg_extension_config_dump('nx.events_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nx.owners', '');
SELECT pg_catalog.pg_extension_config_dump('nx.deployment_secrets', '');
