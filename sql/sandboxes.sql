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
SELECT name, owner, role_name, database_name, length(db_password) AS password_length, created_by
FROM nx.sandboxes ORDER BY name;

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
-- nothing was left behind by the failures
SELECT count(*) AS sandboxes FROM nx.sandboxes;

-- database_url: the sandbox role, its password, the cluster socket
SELECT regexp_replace(nx.database_url('app'),
	'^postgresql://nx_app:[a-z2-7]{32}@/nx_app\?host=[^&]+&port=[0-9]+$', 'postgresql://nx_app:<password>@/nx_app?host=<socket dir>&port=<port>') AS url;
SELECT nx.database_url('nope');
SELECT nx.database_url(NULL);
SELECT nx.drop_kept_database(NULL);

-- drop, keeping the database: the name stays taken until the kept
-- database is dropped too
SELECT nx.drop_sandbox('tuned', keep_database => true);
SELECT database_name, role_name, sandbox, owner, kept_by FROM nx.kept_databases;
SELECT nx.create_sandbox('tuned');
SELECT nx.drop_kept_database('tuned');
SELECT nx.drop_kept_database('tuned');
SELECT sandbox FROM nx.create_sandbox('tuned');
SELECT nx.drop_sandbox('tuned');
SELECT nx.drop_sandbox('tuned');
SELECT nx.drop_sandbox(NULL);
SELECT name FROM nx.sandboxes ORDER BY name;

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
