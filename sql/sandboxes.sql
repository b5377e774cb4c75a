-- sandboxes: create, limits, names, drop (with and without keeping the
-- database), database_url.
\set SHOW_CONTEXT never
SET ROLE alice;

SELECT sandbox, owner, database_name, role_name, memory_limit, pids_limit, open_files_limit, cpu_weight,
	tmp_size, idle_timeout, connection_limit, production_url, production_deployment, created_by
FROM nx.create_sandbox('app');
SELECT sandbox, memory_limit, pids_limit, open_files_limit, cpu_weight, tmp_size, idle_timeout, connection_limit
FROM nx.create_sandbox('tuned', memory_limit => '1GB', pids_limit => 64, open_files_limit => 4096,
					   cpu_weight => 500, tmp_size => '16MB', idle_timeout => '5 minutes', connection_limit => 5);
SELECT sandbox, owner, role_name, database_name, database_quota, created_by
FROM nx.sandbox_info ORDER BY sandbox;
-- the tables are not readable, not even with row-level security (I12)
SELECT count(*) FROM nx.sandboxes;
SELECT count(*) FROM nx.sandbox_secrets;

-- bad names: each a specific error
\set VERBOSITY default
SELECT nx.create_sandbox('');
SELECT nx.create_sandbox(repeat('a', 41));
SELECT nx.create_sandbox('MyApp');
SELECT nx.create_sandbox('my''app');
SELECT nx.create_sandbox('a;drop table nx.sandboxes');
SELECT nx.create_sandbox('café');
SELECT nx.create_sandbox('my_app');
SELECT nx.create_sandbox('-app');
SELECT nx.create_sandbox('app-');
SELECT nx.create_sandbox('1app');
SELECT nx.create_sandbox(NULL);
SELECT nx.create_sandbox('admin');
SELECT nx.create_sandbox('tenant');
SELECT nx.create_sandbox('preview');
-- 40 characters is fine
SELECT sandbox FROM nx.create_sandbox(repeat('a', 39) || 'z');
SELECT nx.drop_sandbox(repeat('a', 39) || 'z');

-- an existing name
SELECT nx.create_sandbox('app');

-- limits out of range, and a malformed size
SELECT nx.create_sandbox('small', memory_limit => '8MB');
SELECT nx.create_sandbox('small', pids_limit => 2);
SELECT nx.create_sandbox('small', cpu_weight => 0);
SELECT nx.create_sandbox('small', idle_timeout => '-1 minute');
SELECT nx.create_sandbox('small', memory_limit => 'lots');
-- only nx_admin may create for someone else
SELECT nx.create_sandbox('gift', owner => 'bob');
-- limits above this cluster's ceilings (the default ceilings)
SELECT nx.create_sandbox('big', memory_limit => '1TB');
SELECT nx.create_sandbox('big', tmp_size => '64GB');
SELECT nx.create_sandbox('big', pids_limit => 65536);
SELECT nx.create_sandbox('big', cpu_weight => 10000);
SELECT nx.create_sandbox('big', connection_limit => 10000);
SELECT nx.create_sandbox('big', open_files_limit => 1048576);
SELECT nx.create_sandbox('big', database_quota => '1TB');
-- owners every developer belongs to, or the platform's own roles
SELECT nx.create_sandbox('shared', owner => 'nx_user');
SELECT nx.create_sandbox('shared', owner => 'nx_admin');
SELECT nx.create_sandbox('shared', owner => 'pg_monitor');
-- nothing was left behind by the failures
SELECT count(*) AS sandboxes FROM nx.sandbox_info;

-- database_url: the sandbox role, its password, the cluster socket
SELECT regexp_replace(nx.database_url('app'),
	'^postgresql://nx_app:[a-z2-7]{32}@/nx_app\?host=[^&]+&port=[0-9]+$', 'postgresql://nx_app:<password>@/nx_app?host=<socket dir>&port=<port>') AS url;
SELECT nx.database_url('nope');
SELECT nx.database_url(NULL);
SELECT nx.drop_kept_database(NULL);

-- drop, keeping the database: the name stays taken until the kept
-- database is dropped too
SELECT nx.drop_sandbox('tuned', keep_database => true);
SELECT database_name, role_name, sandbox, owner, kept_by FROM nx.kept_database_info;
SELECT nx.create_sandbox('tuned');
SELECT nx.drop_kept_database('tuned');
SELECT nx.drop_kept_database('tuned');
SELECT sandbox FROM nx.create_sandbox('tuned');
SELECT nx.drop_sandbox('tuned');
SELECT nx.drop_sandbox('tuned');
SELECT nx.drop_sandbox(NULL);
SELECT sandbox FROM nx.sandbox_info ORDER BY sandbox;

-- alter_sandbox: limits change within the ceilings; NULL keeps a value
SELECT sandbox, memory_limit, pids_limit, idle_timeout, connection_limit, database_quota
FROM nx.alter_sandbox('app', memory_limit => '512MB', idle_timeout => '1 hour', database_quota => '2GB');
SELECT nx.alter_sandbox('app', memory_limit => '64GB');
SELECT nx.alter_sandbox('app', pids_limit => 1);
SELECT sandbox, memory_limit, pids_limit, idle_timeout FROM nx.sandbox_info WHERE sandbox = 'app';
SELECT action, details->'to'->>'memory_limit' AS memory_limit FROM nx.event_log
WHERE action = 'alter_sandbox';

-- sandbox_info shows no secret
SELECT sandbox, owner, database_name, production_url, production_deployment FROM nx.sandbox_info;
SELECT count(*) AS password_columns FROM information_schema.columns
WHERE table_schema = 'nx' AND table_name = 'sandbox_info' AND column_name LIKE '%password%';
RESET ROLE;

-- admins may create a sandbox for another role
SET ROLE carol;
SELECT sandbox, owner FROM nx.create_sandbox('bobs', owner => 'bob');
SELECT nx.create_sandbox('ghosts', owner => 'nobody');
RESET ROLE;
-- a role bob and alice belong to may own sandboxes both act on
CREATE ROLE crew NOLOGIN;
GRANT crew TO alice, bob;
SET ROLE alice;
SELECT sandbox, owner FROM nx.create_sandbox('crewapp', owner => 'crew');
RESET ROLE;
SET ROLE bob;
SELECT sandbox, owner FROM nx.sandbox_info ORDER BY sandbox;
SELECT nx.drop_sandbox('crewapp');
RESET ROLE;
-- the password is stored apart, for the supervisor
SELECT sandbox, length(db_password) AS password_length FROM nx.sandbox_secrets ORDER BY sandbox;

-- per-owner quota: nx.max_sandboxes_per_owner
ALTER SYSTEM SET nx.max_sandboxes_per_owner = 2;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE bob;
SELECT sandbox FROM nx.create_sandbox('bob2');
SELECT nx.create_sandbox('bob3');
SELECT nx.drop_sandbox('bob2');
RESET ROLE;
ALTER SYSTEM RESET nx.max_sandboxes_per_owner;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);

-- nx.max_sandboxes (a reloadable setting: a session cannot raise it)
SET nx.max_sandboxes = 100000;
ALTER SYSTEM SET nx.max_sandboxes = 2;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW nx.max_sandboxes;
SET ROLE alice;
SELECT nx.create_sandbox('third');
RESET ROLE;
ALTER SYSTEM RESET nx.max_sandboxes;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SHOW nx.max_sandboxes;
