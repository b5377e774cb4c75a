-- 90_security.sql: who may read and call what, and what pg_dump carries.
--
-- PUBLIC gets nothing.  Members of nx_user may call the API functions and
-- read the tables and views; row-level security shows them only the rows
-- of sandboxes they may act on (nx._may_act).  Nobody but the extension
-- owner may write the tables: every change goes through a function that
-- checks ownership first.  Tenant roles (nx_tenant) get nothing here.

ALTER TABLE nx.sandboxes ENABLE ROW LEVEL SECURITY;
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

-- Policies run as the querying role, and the tables they consult have
-- their own policies, so each step narrows to the caller's sandboxes.
CREATE POLICY sandboxes_visible ON nx.sandboxes FOR SELECT TO nx_user
	USING (nx._may_act(owner, current_user));
CREATE POLICY deployments_visible ON nx.deployments FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY blobs_visible ON nx.blobs FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.blob OPERATOR(pg_catalog.=) sha256));
CREATE POLICY promotions_visible ON nx.promotions FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY env_visible ON nx.env FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY kept_databases_visible ON nx.kept_databases FOR SELECT TO nx_user
	USING (nx._may_act(owner, current_user));
CREATE POLICY events_visible ON nx.events FOR SELECT TO nx_user
	USING (nx._may_act(owner, current_user));
CREATE POLICY runtime_visible ON nx.runtime FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id OPERATOR(pg_catalog.=) deployment));
CREATE POLICY domains_visible ON nx.domains FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY activity_visible ON nx.activity FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id OPERATOR(pg_catalog.=) deployment));

REVOKE ALL ON ALL TABLES IN SCHEMA nx FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA nx FROM PUBLIC;
GRANT SELECT ON nx.sandboxes, nx.blobs, nx.deployments, nx.promotions, nx.env,
	nx.kept_databases, nx.events, nx.runtime, nx.sandbox_info, nx.status, nx.routes,
	nx.domains, nx.activity, nx.stat_deployments TO nx_user;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA nx FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	nx.create_sandbox(text, text, integer, integer, integer, text, interval, integer, name),
	nx.drop_sandbox(text, boolean),
	nx.drop_kept_database(text),
	nx.set_env(text, text, text),
	nx.unset_env(text, text),
	nx.database_url(text),
	nx.verify_binary(bytea),
	nx.push(text, bytea, text, text[], jsonb),
	nx.start(bigint),
	nx.stop(bigint),
	nx.restart(bigint),
	nx.remove(bigint),
	nx.promote(text, bigint, boolean),
	nx.rollback(text, boolean),
	nx.logs(text, bigint, integer),
	nx.wake(bigint),
	nx.add_domain(text, text),
	nx.remove_domain(text)
TO nx_user;
GRANT EXECUTE ON FUNCTION nx.check_setup(), nx.route_hosts() TO nx_admin;
-- the router sees hosts and deployment ids, wakes asleep deployments and
-- reports traffic; nothing else
GRANT USAGE ON SCHEMA nx TO nx_router;
GRANT EXECUTE ON FUNCTION
	nx.router_routes(),
	nx.route_hosts(),
	nx.wake(bigint),
	nx.report_activity(boolean, bigint[], integer[], bigint[], bigint[], bigint[], bigint[])
TO nx_router;
-- used by the views and policies above, which run as the querying role
GRANT EXECUTE ON FUNCTION
	nx._may_act(name, name),
	nx._setting(text),
	nx._url(text),
	nx._production_host(text),
	nx._preview_host(text),
	nx._supervisor_pid()
TO nx_user;

-- pg_dump of this database is the whole platform state (invariant I1).
SELECT pg_catalog.pg_extension_config_dump('nx.sandboxes', '');
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
