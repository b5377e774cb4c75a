-- nx_sandbox install script, assembled from src/sql/*.sql in name order.
-- 00_roles.sql: the guard, and the cluster-wide roles the platform uses.

\echo Use "CREATE EXTENSION nx_sandbox" to load this file. \quit

-- Roles are cluster-wide and cannot belong to an extension: create them when
-- missing and leave them on DROP EXTENSION (other databases may use them).
--   nx_admin   acts on every sandbox
--   nx_user    creates sandboxes and acts on the ones it owns
--   nx_tenant  group of the per-sandbox database roles (nx_<name>); it gets
--              nothing in this database
--   nx_router  the router's login: may only call nx.router_routes(); its
--              password is set by the supervisor each time it starts the
--              router (until then it cannot log in)
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nx_user') THEN
		CREATE ROLE nx_user NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nx_admin') THEN
		CREATE ROLE nx_admin NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nx_tenant') THEN
		CREATE ROLE nx_tenant NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nx_router') THEN
		CREATE ROLE nx_router LOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('nx_admin', 'nx_user', 'MEMBER') THEN
		GRANT nx_user TO nx_admin;
	END IF;
END
$roles$;

-- Nothing here is for PUBLIC: grants below name nx_user explicitly.
REVOKE ALL ON SCHEMA nx FROM PUBLIC;
GRANT USAGE ON SCHEMA nx TO nx_user;
