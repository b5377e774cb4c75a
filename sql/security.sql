-- security: users see and touch only their own sandboxes; nobody writes
-- the tables directly; PUBLIC and non-platform roles get nothing.
\set SHOW_CONTEXT never

-- bob sees none of alice's rows, through any view
SET ROLE bob;
SELECT (SELECT count(*) FROM nx.sandbox_info) AS sandboxes,
	   (SELECT count(*) FROM nx.status) AS deployments,
	   (SELECT count(*) FROM nx.stat_deployments) AS stats,
	   (SELECT count(*) FROM nx.promotion_log) AS promotions,
	   (SELECT count(*) FROM nx.env_vars) AS env,
	   (SELECT count(*) FROM nx.event_log) AS events,
	   (SELECT count(*) FROM nx.kept_database_info) AS kept,
	   (SELECT count(*) FROM nx.domain_info) AS domains;
-- ... and reads no table at all: row-level security alone leaked rows
-- through the planner's estimates (I12)
SELECT count(*) FROM nx.sandboxes;
SELECT count(*) FROM nx.deployments;
SELECT count(*) FROM nx.env;
SELECT count(*) FROM nx.events;
EXPLAIN (COSTS OFF) SELECT * FROM nx.env_vars WHERE value < 'm';
SELECT sandbox FROM nx.sandbox_info;	-- only his own
SELECT count(*) AS status_rows FROM nx.status;
SELECT count(*) AS route_rows FROM nx.routes;

-- ... and can do nothing to them
\set VERBOSITY default
SELECT nx.push('app', bytes) FROM test_bin WHERE name = 'true';
SELECT nx.promote('app');
SELECT nx.rollback('app');
SELECT nx.set_env('app', 'X', 'y');
SELECT nx.unset_env('app', 'GREETING');
SELECT nx.database_url('app');
SELECT nx.drop_sandbox('app');
SELECT nx.stop(3);
SELECT nx.start(3);
SELECT nx.restart(3);
SELECT nx.remove(6);
SELECT nx.create_sandbox('mine', owner => 'alice');
-- bob cannot tell alice's deployment ids from missing ones
SELECT nx.stop(424242);
\set VERBOSITY terse

-- writing the tables directly is not allowed
INSERT INTO nx.sandboxes (name, owner, role_name, database_name, memory_limit, pids_limit,
	open_files_limit, cpu_weight, tmp_size, idle_timeout, connection_limit, created_by, uid_offset, database_quota)
VALUES ('evil', 'bob', 'nx_evil', 'nx_evil', 16777216, 8, 64, 1, 1048576, '0', 1, 'bob', 99, 1048576);
UPDATE nx.deployments SET is_production = true;
UPDATE nx.sandboxes SET owner = 'bob';
DELETE FROM nx.events;
TRUNCATE nx.env;
INSERT INTO nx.env VALUES ('app', 'X', 'y', 'bob');
SELECT nextval('nx.deployments_id_seq');
-- nor calling the internals that skip the checks
SELECT nx._sandbox_for_update('app');
SELECT nx._event('push', 'app', NULL, 'alice');
SELECT nx._make_production(NULL::nx.sandboxes, 3, 'promote', NULL);
SELECT * FROM nx._desired_deployments('/tmp', '5432');
SELECT * FROM nx._all_routes();
SELECT nx._domain_txt_value('alice');
SELECT nx._allocate_port();
SELECT nx._random_token(16);
RESET ROLE;

-- alice's own view is intact
SET ROLE alice;
SELECT sandbox FROM nx.sandbox_info ORDER BY sandbox;
SELECT name, value FROM nx.env_vars ORDER BY name;
RESET ROLE;

-- a role outside nx_user cannot even use the schema
SET ROLE mallory;
SELECT count(*) FROM nx.sandbox_info;
SELECT nx.create_sandbox('m');
SELECT ok FROM nx.verify_binary('\x00');
RESET ROLE;

-- a team role owns a sandbox its members create and share
CREATE ROLE team NOLOGIN;
GRANT team TO bob;
SET ROLE bob;
SELECT sandbox, owner FROM nx.create_sandbox('teamapp', owner => 'team');
RESET ROLE;
CREATE ROLE dave LOGIN IN ROLE nx_user, team;
SET ROLE dave;
SELECT sandbox, owner FROM nx.sandbox_info ORDER BY sandbox;
SELECT nx.set_env('teamapp', 'SHARED', 'yes');
SELECT nx.drop_sandbox('teamapp');
RESET ROLE;

-- members of nx_admin see and act on everything
SET ROLE carol;
SELECT sandbox, owner FROM nx.sandbox_info ORDER BY sandbox;
SELECT deployment FROM nx.promote('app', 6, force => true);
SELECT actor, owner, action, sandbox, deployment FROM nx.event_log ORDER BY id DESC LIMIT 1;
RESET ROLE;

-- catalog checks: the rules hold for every object, not just the ones tried
-- PUBLIC holds no privilege on anything in schema nx
SELECT c.relname, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
WHERE c.relnamespace = 'nx'::regnamespace AND a.grantee = 0;
SELECT p.proname FROM pg_proc p, aclexplode(p.proacl) a
WHERE p.pronamespace = 'nx'::regnamespace AND a.grantee = 0;
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'nx'::regnamespace AND p.proacl IS NULL;
-- nx_user may write nothing
SELECT c.relname, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a
WHERE c.relnamespace = 'nx'::regnamespace AND a.grantee = 'nx_user'::regrole AND a.privilege_type <> 'SELECT';
-- nx_user reads only views, and each view reads no relation directly:
-- only SECURITY DEFINER functions, whose estimates are their ROWS
SELECT c.relname, c.relkind FROM pg_class c
WHERE c.relnamespace = 'nx'::regnamespace AND has_table_privilege('nx_user', c.oid, 'SELECT')
  AND (c.relkind <> 'v'
	   OR EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
				  WHERE r.ev_class = c.oid AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> c.oid)
	   OR EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
				  JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
				  WHERE r.ev_class = c.oid AND NOT p.prosecdef));
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'nx'::regnamespace AND has_table_privilege('nx_user', c.oid, 'SELECT')
ORDER BY 1;
-- row-level security on every table
SELECT relname FROM pg_class WHERE relnamespace = 'nx'::regnamespace AND relkind = 'r' AND NOT relrowsecurity;
-- every SECURITY DEFINER function pins its search_path
SELECT proname FROM pg_proc WHERE pronamespace = 'nx'::regnamespace AND prosecdef
	AND NOT coalesce(proconfig @> ARRAY['search_path=pg_catalog, pg_temp'], false);
-- the public API nx_user may call
SELECT p.oid::regprocedure FROM pg_proc p
WHERE p.pronamespace = 'nx'::regnamespace AND has_function_privilege('nx_user', p.oid, 'EXECUTE')
ORDER BY p.oid::regprocedure::text;
-- nx_tenant (the group of sandbox database roles) gets nothing here
SELECT has_schema_privilege('nx_tenant', 'nx', 'USAGE') AS tenant_usage,
	   has_database_privilege('nx_tenant', current_database(), 'CREATE') AS tenant_create;
