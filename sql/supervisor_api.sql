-- supervisor_api: what the SQL side shows of the supervisor.  The regress
-- instance runs without it (nx.supervisor = off); t/010_supervisor.pl
-- covers it running.
\set SHOW_CONTEXT never
SET ROLE alice;

-- without a supervisor, a running deployment is pending, and says why
SELECT deployment, desired_state, state, pid, restarts, last_error
FROM nx.status WHERE sandbox = 'app' ORDER BY deployment;
SELECT deployment, desired_state FROM nx.stop(3);
SELECT deployment, desired_state, state, last_error FROM nx.status WHERE deployment = 3;
SELECT deployment, desired_state, state FROM nx.start(3);

-- every sandbox gets the lowest free uid offset; a dropped sandbox's
-- offset is retired until the supervisor has seen its processes gone (I15)
RESET ROLE;
SELECT name, uid_offset FROM nx.sandboxes ORDER BY uid_offset;
SET ROLE alice;
SELECT sandbox FROM nx.create_sandbox('u1');
SELECT sandbox FROM nx.create_sandbox('u2');
SELECT nx.drop_sandbox('u1');
SELECT sandbox FROM nx.create_sandbox('u3');
RESET ROLE;
SELECT name, uid_offset FROM nx.sandboxes ORDER BY uid_offset;
SELECT uid_offset FROM nx.retired_uid_offsets ORDER BY 1;
-- once nothing runs as it (the supervisor deletes the row), it is free
DELETE FROM nx.retired_uid_offsets;
SET ROLE alice;
SELECT nx.drop_sandbox('u2');
SELECT sandbox FROM nx.create_sandbox('u4');
RESET ROLE;
SELECT name, uid_offset FROM nx.sandboxes WHERE name LIKE 'u%' ORDER BY uid_offset;
DELETE FROM nx.retired_uid_offsets;
SET ROLE alice;
SELECT nx.drop_sandbox('u3');
SELECT nx.drop_sandbox('u4');

-- logs: nothing ran, so nothing to show; bad arguments are refused
SELECT * FROM nx.logs('app');
\set VERBOSITY default
SELECT * FROM nx.logs('app', lines => 0);
SELECT * FROM nx.logs('app', 424242);
SELECT * FROM nx.logs('nope');
SELECT * FROM nx.logs(NULL);
\set VERBOSITY terse
RESET ROLE;
SET ROLE bob;
SELECT * FROM nx.logs('app');
-- check_setup is for nx_admin
SELECT * FROM nx.check_setup();
RESET ROLE;

-- check_setup: one row per prerequisite (host-dependent ones not shown)
SET ROLE carol;
SELECT check_name, required FROM nx.check_setup() ORDER BY check_name;
SELECT check_name, ok, fix IS NOT NULL AS has_fix FROM nx.check_setup()
WHERE check_name IN ('shared_preload_libraries', 'supervisor') ORDER BY check_name;
-- autovacuum visits: advice on autovacuum_naptime against the number of
-- databases (a few here, at the default 1min: fine)
SELECT ok, required, detail ~ '^\d+ databases, autovacuum_naptime = 60s: a worker starts every [0-9.]+ s$' AS detail_ok, fix
FROM nx.check_setup() WHERE check_name = 'autovacuum visits';
RESET ROLE;

-- nx.runtime is derived state: unlogged, and not in pg_dump
SELECT relpersistence FROM pg_class WHERE oid = 'nx.runtime'::regclass;
SELECT count(*) AS dumped FROM pg_extension, unnest(extconfig) c WHERE extname = 'nx_sandbox' AND c = 'nx.runtime'::regclass;
