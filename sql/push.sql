-- push: deployments from binaries, content addressing, ports, slugs,
-- lifecycle, and refusals that leave nothing behind.
\set SHOW_CONTEXT never
SET ROLE alice;

-- the acceptance case
SELECT sandbox, deployment, label, port, preview_url ~ '^http://[a-z2-7]{16}\.preview\.localhost:8080/$' AS preview_url_ok,
	   production, production_url, desired_state, sha256 = encode(sha256(t.bytes), 'hex') AS sha256_ok
FROM test_bin t, nx.push('app', t.bytes) WHERE t.name = 'true';

-- the same bytes again: a second deployment, one blob
SELECT deployment, label, port FROM test_bin t, nx.push('app', t.bytes, label => 'v2', args => ARRAY['--flag'], env => '{"MODE": "fast"}') WHERE t.name = 'true';
RESET ROLE;
SELECT count(*) AS blobs FROM nx.blobs;
SELECT id, label, args, env, port, desired_state, binary_name FROM nx.deployments ORDER BY id;
-- slugs are unique and unguessable-looking
SELECT count(DISTINCT slug) AS distinct_slugs, bool_and(slug ~ '^[a-z2-7]{16}$') AS slugs_ok FROM nx.deployments;
SET ROLE alice;
-- a different binary is a new blob
SELECT deployment, port FROM test_bin t, nx.push('app', t.bytes, label => 'false') WHERE t.name = 'false';
-- binaries belong to a sandbox: the same bytes in another one are stored again
SELECT sandbox FROM nx.create_sandbox('other');
SELECT deployment, port FROM test_bin t, nx.push('other', t.bytes) WHERE t.name = 'false';
RESET ROLE;
SELECT sandbox, count(*) AS blobs FROM nx.blobs GROUP BY sandbox ORDER BY sandbox;
SET ROLE alice;
SELECT nx.drop_sandbox('other');
RESET ROLE;
SELECT count(*) AS blobs_left_of_other FROM nx.blobs WHERE sandbox = 'other';
SET ROLE alice;

-- the app's name (argv[0]) and arguments with $NAME expanded at each start
SELECT deployment, binary_name, args FROM test_bin t,
	nx.push('app', t.bytes, name => 'busybox', args => ARRAY['httpd', '-f', '-p', '$PORT', '-h', '${NX_SANDBOX}-$$HOME']) WHERE t.name = 'true';
RESET ROLE;
SELECT nx._expand_args(args, '{"PORT": "20005", "NX_SANDBOX": "app"}') AS expanded FROM nx.deployments WHERE binary_name = 'busybox';
SET ROLE alice;
SELECT nx.remove(deployment) FROM nx.status WHERE binary_name = 'busybox';

-- the route table: one preview host per deployment
SELECT kind, sandbox, deployment, port, host ~ '^[a-z2-7]{16}\.preview\.localhost$' AS host_ok FROM nx.routes ORDER BY deployment;

-- refusals; each leaves no blob, deployment or event behind
RESET ROLE;
CREATE TEMP TABLE before AS
SELECT (SELECT count(*) FROM nx.blobs) AS blobs, (SELECT count(*) FROM nx.deployments) AS deployments,
	   (SELECT count(*) FROM nx.events) AS events;
GRANT SELECT ON before TO alice;
SET ROLE alice;
\set VERBOSITY default
-- binaries that cannot run: the SQLSTATE says which kind of problem
\x on
SELECT * FROM error_of($$SELECT nx.push('app', '\x00'::bytea)$$);
SELECT * FROM error_of($$SELECT nx.push('app', ''::bytea)$$);
SELECT * FROM error_of($$SELECT nx.push('app', set_byte(bytes, 4, 1)) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', set_byte(bytes, 5, 2)) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', patch_le(bytes, 18, 2, 183)) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', substring(bytes from 1 for 40)) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', patch_le(bytes, 32, 8, 1099511627776)) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', patch_le(bytes, phdr_offset(bytes, 2) + 8, 8, 4294967296)) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', set_byte(bytes, position('ld-linux-x86-64.so.2'::bytea IN bytes) + 18, ascii('9'))) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', set_byte(bytes, position('libc.so.6'::bytea IN bytes) + 1, ascii('q'))) FROM test_bin WHERE name = 'true'$$);
SELECT * FROM error_of($$SELECT nx.push('app', convert_to(E'#!/usr/bin/env python3\nprint(1)\n', 'UTF8'))$$);
\x off
-- the same refusals outside error_of, each in its own transaction
SELECT nx.push('app', '\x00'::bytea);
SELECT nx.push('app', set_byte(bytes, 4, 1)) FROM test_bin WHERE name = 'true';
SELECT nx.push('app', NULL);
SELECT nx.push('nope', bytes) FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, label => 'has space') FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, args => ARRAY['ok', NULL]) FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, env => '{"PORT": "80"}') FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, env => '{"PGUSER": "postgres"}') FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, env => '{"N": 1}') FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, env => '["A"]') FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, args => ARRAY['--db', '$DATABASE_URL']) FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, args => ARRAY['--port=${PORT']) FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, args => ARRAY['costs $5']) FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, name => '../etc/passwd') FROM test_bin WHERE name = 'true';
SELECT nx.push('app', bytes, name => '.hidden') FROM test_bin WHERE name = 'true';
\set VERBOSITY terse
RESET ROLE;
SELECT (SELECT count(*) FROM nx.blobs) - blobs AS new_blobs,
	   (SELECT count(*) FROM nx.deployments) - deployments AS new_deployments,
	   (SELECT count(*) FROM nx.events) - events AS new_events
FROM before;
SET ROLE alice;

-- lifecycle
SELECT deployment, desired_state FROM nx.stop(2);
SELECT deployment, desired_state FROM nx.start(2);
SELECT deployment, desired_state FROM nx.restart(2);
RESET ROLE;
SELECT restart_generation FROM nx.deployments WHERE id = 2;
SET ROLE alice;
SELECT nx.remove(2);
RESET ROLE;
SELECT id, port, desired_state, removed_at IS NOT NULL AS removed FROM nx.deployments WHERE id = 2;
SET ROLE alice;
SELECT deployment FROM nx.status ORDER BY deployment;
\set VERBOSITY default
SELECT nx.remove(2);
SELECT nx.start(2);
SELECT nx.stop(99999);
SELECT nx.restart(NULL);
\set VERBOSITY terse

-- a removed deployment's port is free again, and the lowest free is taken
SELECT port FROM test_bin t, nx.push('app', t.bytes) WHERE t.name = 'true';

-- port range exhausted: a clear error, nothing left behind
RESET ROLE;
ALTER SYSTEM SET nx.port_range = '20000-20003';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE alice;
SELECT port FROM test_bin t, nx.push('app', t.bytes) WHERE t.name = 'true';
\set VERBOSITY default
SELECT port FROM test_bin t, nx.push('app', t.bytes) WHERE t.name = 'true';
\set VERBOSITY terse
RESET ROLE;
ALTER SYSTEM RESET nx.port_range;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);

-- too many deployments in one sandbox
ALTER SYSTEM SET nx.max_deployments_per_sandbox = 4;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE alice;
\set VERBOSITY default
SELECT port FROM test_bin t, nx.push('app', t.bytes) WHERE t.name = 'true';
\set VERBOSITY terse
RESET ROLE;
ALTER SYSTEM RESET nx.max_deployments_per_sandbox;

-- too many deployments for one owner, across its sandboxes
ALTER SYSTEM SET nx.max_deployments_per_owner = 4;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE alice;
\set VERBOSITY default
SELECT port FROM test_bin t, nx.push('app', t.bytes) WHERE t.name = 'true';
\set VERBOSITY terse
RESET ROLE;
ALTER SYSTEM RESET nx.max_deployments_per_owner;

-- a binary over nx.max_binary_size
ALTER SYSTEM SET nx.max_binary_size = '10kB';
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);
SET ROLE alice;
\set VERBOSITY default
\x on
SELECT * FROM error_of($$SELECT nx.push('app', bytes) FROM test_bin WHERE name = 'true'$$);
SELECT ok, regexp_replace(problems[1], '[0-9]{3,}', 'N', 'g') AS problem, hint FROM test_bin t, nx.verify_binary(t.bytes) WHERE t.name = 'true';
\x off
\set VERBOSITY terse
RESET ROLE;
ALTER SYSTEM RESET nx.max_binary_size;
SELECT pg_reload_conf();
SELECT pg_sleep(0.5);

-- settings are validated
ALTER SYSTEM SET nx.port_range = '80-90';
ALTER SYSTEM SET nx.port_range = '30000-20000';
ALTER SYSTEM SET nx.port_range = 'lots';
ALTER SYSTEM SET nx.domain = 'Bad_Domain';
ALTER SYSTEM SET nx.domain = 'apps..example.com';
