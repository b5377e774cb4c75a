-- no_preload: CREATE EXTENSION on a cluster that does not preload the
-- library (a DBA's install order) works, the control plane works, and the
-- views and nx.check_setup() say why nothing runs.  Runs in its own
-- temporary instance (sql/no_preload.conf), without the supervisor.
\set SHOW_CONTEXT never
SHOW shared_preload_libraries;
CREATE EXTENSION nx_sandbox;
SELECT extversion FROM pg_extension WHERE extname = 'nx_sandbox';
-- settings exist once the library is loaded; those that would need a
-- restart are reload settings here (no supervisor reads them)
SELECT name, setting, context FROM pg_settings
WHERE name IN ('nx.database', 'nx.supervisor', 'nx.domain', 'nx.max_memory_limit') ORDER BY name;
-- the control plane works
SELECT sandbox, production_url FROM nx.create_sandbox('early');
SELECT deployment, state, last_error FROM nx.push('early', pg_read_binary_file('/usr/bin/true'));
SELECT deployment, state, last_error FROM nx.status;
-- check_setup says what is missing and how to fix it
SELECT check_name, ok, fix FROM nx.check_setup()
WHERE check_name IN ('shared_preload_libraries', 'supervisor') ORDER BY check_name;
-- a new session loads the library on its first nx call, as this one did
\c
SELECT count(*) FROM nx.status;
SELECT nx.drop_sandbox('early');
DROP EXTENSION nx_sandbox;
