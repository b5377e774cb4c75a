-- preview_databases: which database each deployment uses (production,
-- branch, empty), and the asynchronous promote of a preview with a
-- database of its own.  The supervisor is off: the branch copies and the
-- readiness it would report are written here by hand; t/044 runs it.
\set SHOW_CONTEXT never
-- the cluster default (sql/nx_regress.conf sets production for the other
-- suites); the shipped default is branch
SHOW nx.default_preview_database;
SELECT boot_val FROM pg_settings WHERE name = 'nx.default_preview_database';
ALTER SYSTEM SET nx.default_preview_database = 'branch';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW nx.default_preview_database;

SET ROLE alice;
SELECT sandbox, preview_database FROM nx.create_sandbox('shop');
-- the first deployment has no production data to branch: production
SELECT deployment, database_mode, database_name FROM test_bin t, nx.push('shop', t.bytes, label => 'v1') WHERE t.name = 'true';
-- the next ones get the sandbox's preview_database: a branch of their own
SELECT deployment, database_mode, database_name, state FROM test_bin t, nx.push('shop', t.bytes, label => 'v2') WHERE t.name = 'true';
SELECT deployment, database_mode, database_name FROM test_bin t, nx.push('shop', t.bytes, label => 'v3', database => 'empty') WHERE t.name = 'true';
SELECT deployment, database_mode, database_name FROM test_bin t, nx.push('shop', t.bytes, label => 'v4', database => 'production') WHERE t.name = 'true';
\set VERBOSITY default
SELECT nx.push('shop', bytes, database => 'copy') FROM test_bin WHERE name = 'true';
SELECT nx.create_sandbox('bad', preview_database => 'shared');
\set VERBOSITY terse
SELECT sandbox, preview_database FROM nx.alter_sandbox('shop', preview_database => 'empty');
SELECT sandbox, preview_database FROM nx.alter_sandbox('shop', preview_database => 'branch');

-- a branch deployment's database, role and credentials are its own: never
-- production's, whatever the sandbox's env says
RESET ROLE;
SELECT deployment, database_name, role_name, database_ready,
	   (SELECT count(*) FROM unnest(envp) e WHERE e LIKE 'PGDATABASE=%' OR e LIKE 'PGUSER=%' OR e LIKE 'DATABASE_URL=%') AS db_vars,
	   (SELECT e FROM unnest(envp) e WHERE e LIKE 'PGDATABASE=%') AS pgdatabase,
	   (SELECT count(*) FROM unnest(envp) e, nx.sandbox_secrets p
		WHERE p.sandbox = 'shop' AND e LIKE '%' || p.db_password || '%') AS production_password_seen
FROM nx._desired_deployments('/tmp', '5432') WHERE sandbox = 'shop' ORDER BY deployment;
SELECT deployment, database_mode, database_name, source_database FROM nx._desired_branches() ORDER BY deployment;
SELECT length(db_password) FROM nx.deployment_secrets ORDER BY deployment;
SET ROLE alice;
SELECT regexp_replace(nx.database_url('shop', d.deployment), ':[a-z2-7]{32}@', ':<password>@')
	   ~ ('^postgresql://nx_shop_' || d.deployment || ':<password>@/nx_shop_' || d.deployment || '\?') AS branch_url_ok
FROM nx.status d WHERE d.sandbox = 'shop' AND d.database_mode = 'branch';
\set VERBOSITY default
SELECT nx.database_url('shop', 424242);
\set VERBOSITY terse

-- branching: shown with its progress until the copy is ready
RESET ROLE;
INSERT INTO nx.branches (deployment, database_name, state, bytes_copied, bytes_total)
SELECT deployment, database_name, 'copying', 1000, 8000 FROM nx._desired_branches() WHERE database_mode = 'branch';
SET ROLE alice;
SELECT deployment, state, branch_bytes_copied, branch_bytes_total FROM nx.status WHERE database_mode = 'branch';
RESET ROLE;
UPDATE nx.branches SET state = 'failed', last_error = 'pg_dump: connection refused';
SET ROLE alice;
SELECT deployment, state, last_error FROM nx.status WHERE database_mode = 'branch';
RESET ROLE;
UPDATE nx.branches SET state = 'ready', bytes_copied = 8000;
SELECT deployment, database_ready FROM nx._desired_deployments('/tmp', '5432')
WHERE deployment IN (SELECT deployment FROM nx._desired_branches() WHERE database_mode = 'branch');
SET ROLE alice;

-- limits: branches per sandbox, and the size of what may be branched
RESET ROLE;
ALTER SYSTEM SET nx.max_branches_per_sandbox = 2;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE alice;
\set VERBOSITY default
SELECT nx.push('shop', bytes) FROM test_bin WHERE name = 'true';
\set VERBOSITY terse
RESET ROLE;
ALTER SYSTEM RESET nx.max_branches_per_sandbox;
ALTER SYSTEM SET nx.max_branch_size = '1MB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
-- (the regress instance has no supervisor: stand in a database for shop's)
CREATE DATABASE nx_shop;
SET ROLE alice;
\set VERBOSITY default
SELECT nx.push('shop', bytes, database => 'branch') FROM test_bin WHERE name = 'true';
\set VERBOSITY terse
RESET ROLE;
DROP DATABASE nx_shop;
ALTER SYSTEM RESET nx.max_branch_size;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);

-- promoting a branch preview: its binary starts on the production database
-- as a new deployment, which becomes production once ready
SET ROLE alice;
SELECT deployment AS v2 FROM nx.status WHERE sandbox = 'shop' AND label = 'v2' \gset
SELECT deployment AS v1 FROM nx.status WHERE sandbox = 'shop' AND label = 'v1' \gset
SELECT deployment FROM nx.promote('shop', :v1, force => true);
SELECT deployment > :v2 AS is_new, label, database_mode, state, production, promote_from = :v2 AS from_v2
FROM nx.promote('shop', :v2);
SELECT deployment AS p FROM nx.status WHERE sandbox = 'shop' AND state = 'promoting' \gset
SELECT action, deployment = :p AS the_new_one, details->>'promote_from' = :v2::text AS from_v2
FROM nx.event_log WHERE action = 'promote_requested';
-- not ready yet: nothing moves
RESET ROLE;
SELECT nx._complete_promotions();
INSERT INTO nx.runtime (deployment, state) VALUES (:p, 'ready');
SELECT nx._complete_promotions();
SET ROLE alice;
SELECT deployment = :p AS new_is_production, production, state, database_mode FROM nx.status WHERE sandbox = 'shop' AND production;
SELECT deployment = :v2 AS preview_kept, state <> 'removed' AS still_there FROM nx.status WHERE deployment = :v2;
SELECT kind, deployment = :p AS new, previous = :v1 AS from_v1, promoted_by FROM nx.promotion_log WHERE sandbox = 'shop' ORDER BY id DESC LIMIT 1;
-- rollback keeps working
SELECT deployment = :v1 AS back_to_v1 FROM nx.rollback('shop', force => true);

-- a promote whose new deployment fails leaves production as it was
SELECT deployment AS p2 FROM nx.promote('shop', :v2) \gset
RESET ROLE;
INSERT INTO nx.runtime (deployment, state, last_error) VALUES (:p2, 'crashloop', 'exited 5 times within 60 seconds');
SELECT nx._complete_promotions();
SET ROLE alice;
SELECT deployment = :v1 AS production_untouched FROM nx.status WHERE sandbox = 'shop' AND production;
SELECT action, details->>'reason' AS reason FROM nx.event_log WHERE action = 'promote_failed';
-- a second promote replaces a pending one
RESET ROLE;
DELETE FROM nx.runtime;
SET ROLE alice;
SELECT deployment AS p3 FROM nx.promote('shop', :v2) \gset
SELECT deployment AS p4 FROM nx.promote('shop', :v2) \gset
SELECT count(*) AS pending FROM nx.status WHERE sandbox = 'shop' AND state = 'promoting';
SELECT action, details->>'reason' AS reason FROM nx.event_log WHERE action = 'promote_failed' ORDER BY id DESC LIMIT 1;

-- dropping with keep_database keeps the branch databases too
SELECT nx.drop_sandbox('shop', keep_database => true);
SELECT database_name ~ '^nx_shop(_[0-9]+)?$' AS name_ok, count(*) FROM nx.kept_database_info GROUP BY 1;
SELECT nx.drop_kept_database('shop');
SELECT count(*) AS kept_left FROM nx.kept_database_info;
RESET ROLE;
SELECT count(*) AS secrets_left FROM nx.deployment_secrets;
DELETE FROM nx.branches;
DELETE FROM nx.runtime;
ALTER SYSTEM RESET nx.default_preview_database;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
