-- 60_supervisor.sql: reading what the supervisor knows: a deployment's
-- logs, and whether the host is ready to run sandboxes.

-- The C readers (src/api/logs.c, src/api/check_setup.c).
CREATE FUNCTION nx._read_log(deployment bigint, lines integer) RETURNS SETOF text
	AS 'MODULE_PATHNAME', 'nx_read_log' LANGUAGE C VOLATILE STRICT;
CREATE FUNCTION nx._host_checks(OUT check_name text, OUT ok boolean, OUT required boolean,
								OUT detail text, OUT fix text) RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'nx_host_checks' LANGUAGE C VOLATILE STRICT;

-- logs: the last lines a deployment wrote to stdout and stderr, oldest
-- first (by default the production deployment's, else the newest one's).  The supervisor keeps up to
-- twice nx.log_size per deployment.
CREATE FUNCTION nx.logs(sandbox text, deployment bigint DEFAULT NULL, lines integer DEFAULT 100)
RETURNS TABLE (line text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._require_sandbox(logs.sandbox);
	target bigint := logs.deployment;
BEGIN
	IF lines IS NULL OR lines < 1 OR lines > 100000 THEN
		RAISE EXCEPTION 'lines must be between 1 and 100000' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF target IS NULL THEN
		SELECT d.id INTO target FROM nx.deployments d
		WHERE d.sandbox = s.name AND d.desired_state <> 'removed'
		ORDER BY d.is_production DESC, d.id DESC LIMIT 1;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'sandbox "%" has no deployment', s.name
				USING ERRCODE = 'undefined_object', HINT = 'Push a binary first with nx.push().';
		END IF;
	ELSIF NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id = target AND d.sandbox = s.name) THEN
		RAISE EXCEPTION 'deployment % is not a deployment of sandbox "%"', target, s.name
			USING ERRCODE = 'undefined_object',
				HINT = format('nx.status lists the deployments of sandbox "%s".', s.name);
	END IF;
	RETURN QUERY SELECT l FROM nx._read_log(target, lines) AS l;
END
$$;

-- _hba_check: may tenants reach only their own database, and nobody else
-- be reached from a sandbox without proving who they are?  A sandbox can
-- open the cluster's unix socket, so:
--   - "local sameuser +nx_tenant scram-sha-256" then "local all +nx_tenant
--     reject" must come before any rule that could let a tenant in
--     elsewhere;
--   - no "local" rule may use trust: with it, a sandbox logs in as any role,
--     postgres included.  (peer is safe: a sandbox never runs as the
--     cluster's OS user or any other host user.)
-- The supervisor starts no sandbox while this is not ok.
CREATE FUNCTION nx._hba_check(OUT ok boolean, OUT detail text, OUT fix text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tenant_rule integer;
	reject_rule integer;
	trust_rule integer;
BEGIN
	SELECT min(line_number) INTO tenant_rule FROM pg_hba_file_rules
	WHERE type = 'local' AND database = '{sameuser}' AND user_name = '{+nx_tenant}'
	  AND auth_method = 'scram-sha-256';
	SELECT min(line_number) INTO reject_rule FROM pg_hba_file_rules
	WHERE type = 'local' AND database = '{all}' AND user_name = '{+nx_tenant}' AND auth_method = 'reject';
	SELECT min(line_number) INTO trust_rule FROM pg_hba_file_rules
	WHERE type = 'local' AND auth_method = 'trust';
	IF trust_rule IS NOT NULL THEN
		ok := false;
		detail := format('pg_hba.conf line %s lets local connections in with "trust": a sandbox could log in as any role, postgres included', trust_rule);
		fix := 'use peer (or scram-sha-256) instead of trust on every "local" line of pg_hba.conf, then SELECT pg_reload_conf()';
		RETURN;
	END IF;
	ok := tenant_rule IS NOT NULL AND reject_rule IS NOT NULL AND tenant_rule < reject_rule
		AND NOT EXISTS (SELECT 1 FROM pg_hba_file_rules
						WHERE type = 'local' AND line_number < reject_rule AND line_number <> tenant_rule
						  AND (user_name = '{all}' OR '+nx_tenant' = ANY (user_name)));
	detail := format('tenant rule at line %s, reject rule at line %s, no local trust rule',
					 coalesce(tenant_rule::text, 'none'), coalesce(reject_rule::text, 'none'));
	fix := CASE WHEN NOT ok THEN 'put these two lines first in pg_hba.conf, then SELECT pg_reload_conf(): '
		|| '"local sameuser +nx_tenant scram-sha-256" and "local all +nx_tenant reject"' END;
END
$$;

-- check_setup: one row per host prerequisite of running sandboxes, with the
-- exact fix for each that fails.  The supervisor starts nothing while a
-- required check fails.
CREATE FUNCTION nx.check_setup()
RETURNS TABLE (check_name text, ok boolean, required boolean, detail text, fix text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	preload text := current_setting('shared_preload_libraries');
	databases bigint;
	naptime int;
	advised bigint;
BEGIN
	check_name := 'shared_preload_libraries';
	ok := preload ~ '(^|[\s,])"?nx_sandbox"?($|[\s,])';
	required := true;
	detail := format('shared_preload_libraries = %L', preload);
	fix := CASE WHEN NOT ok THEN 'add nx_sandbox to shared_preload_libraries in postgresql.conf and restart' END;
	RETURN NEXT;

	check_name := 'supervisor';
	ok := nx._supervisor_pid() > 0 AND nx._setting('nx.database') = current_database();
	required := true;
	detail := CASE WHEN nx._supervisor_pid() > 0
				   THEN format('running (pid %s) for database %L', nx._supervisor_pid(), nx._setting('nx.database'))
				   ELSE 'not running' END;
	-- the first cause that applies
	fix := CASE WHEN ok THEN NULL
				WHEN NOT preload ~ '(^|[\s,])"?nx_sandbox"?($|[\s,])'
				THEN 'it runs only when nx_sandbox is in shared_preload_libraries (see that row), then restart'
				WHEN nx._setting('nx.supervisor') <> 'on'
				THEN 'set nx.supervisor = on in postgresql.conf and restart'
				WHEN nx._setting('nx.database') <> current_database()
				THEN format('it serves database %L: set nx.database = %L in postgresql.conf and restart',
							nx._setting('nx.database'), current_database())
				ELSE 'read the server log (lines starting with "nx supervisor")' END;
	RETURN NEXT;

	SELECT 'pg_hba', h.ok, true, h.detail, h.fix INTO check_name, ok, required, detail, fix
	FROM nx._hba_check() h;
	RETURN NEXT;

	-- the router (when the supervisor runs it) logs in as nx_router: the
	-- first local rule that matches it here must ask for its password
	check_name := 'router';
	SELECT r.auth_method = 'scram-sha-256', format('first local rule for nx_router: line %s (%s)', r.line_number, r.auth_method)
	INTO ok, detail
	FROM pg_hba_file_rules r
	WHERE r.type = 'local' AND (r.user_name = '{all}' OR 'nx_router' = ANY (r.user_name))
	  AND (r.database = '{all}' OR current_database() = ANY (r.database))
	ORDER BY r.line_number LIMIT 1;
	ok := coalesce(ok, false);
	detail := coalesce(detail, 'no local rule matches nx_router');
	required := nx._setting('nx.router') = 'on';
	fix := CASE WHEN NOT ok THEN format('put "local %s nx_router scram-sha-256" first in pg_hba.conf, then SELECT pg_reload_conf()', current_database()) END;
	RETURN NEXT;

	-- autovacuum visits every database that has statistics (every tenant
	-- database that was ever used) once per autovacuum_naptime, starting a
	-- worker each time whether anything changed or not: with many
	-- sandboxes a constant cost (500 idle sandboxes at the default 1min: a
	-- quarter of a core, BENCHMARKS.md).  Advice only: at most one worker
	-- start a second, i.e. a naptime of at least a second per database.
	check_name := 'autovacuum visits';
	SELECT count(*) INTO databases FROM pg_database d WHERE d.datallowconn;
	SELECT s.setting::int INTO naptime FROM pg_settings s WHERE s.name = 'autovacuum_naptime';
	ok := NOT current_setting('autovacuum')::boolean OR naptime >= databases;
	required := false;
	detail := format('%s databases, autovacuum_naptime = %ss: a worker starts every %s s',
					 databases, naptime, round(naptime::numeric / greatest(databases, 1), 2));
	-- 1.2 s per database, rounded up to whole minutes: room for 20% more
	-- sandboxes before the advice applies again
	advised := ceil(databases * 1.2 / 60) * 60;
	fix := CASE WHEN NOT ok THEN format('ALTER SYSTEM SET autovacuum_naptime = %L; SELECT pg_reload_conf(); '
										'(each database is then visited every %s s: a table that needs vacuuming waits up to that long)',
										advised || 's', advised) END;
	RETURN NEXT;

	RETURN QUERY SELECT * FROM nx._host_checks();
END
$$;

-- router_routes: what the router needs and nothing more: each host it
-- serves, the deployment behind it and whether that should be running.
-- The router logs in as nx_router, which may call this function and
-- nothing else in schema nx.
-- desired_state is 'asleep' for a deployment stopped for being idle: the
-- router wakes it (nx.wake) and holds the request until it is ready; and
-- 'stopped' also for one that crashloops or failed, which will not be up
-- within the router's ready timeout: it answers 503 with Retry-After at
-- once instead of holding the request (the supervisor sends NOTIFY
-- nx_routes with every runtime state change).
CREATE FUNCTION nx.router_routes() RETURNS TABLE (host text, deployment bigint, desired_state text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT r.host, r.deployment,
		   CASE WHEN r.asleep THEN 'asleep'
				WHEN rt.state IN ('crashloop', 'failed') THEN 'stopped'
				ELSE r.desired_state END
	FROM nx._all_routes() r
	LEFT JOIN nx.runtime rt ON rt.deployment = r.deployment
$$;

-- _is_tenant: is the role a direct member of nx_tenant (so that the
-- pg_hba.conf rules that confine tenants apply to it)?  Tested on
-- pg_auth_members, without inheriting superuser rights.
CREATE FUNCTION nx._is_tenant(role oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT EXISTS (SELECT 1 FROM pg_auth_members m
				   WHERE m.member = role
					 AND m.roleid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = 'nx_tenant'))
$$;

-- _tenant_roles: every direct member of nx_tenant, the same test as
-- _is_tenant for all roles at once.  A statement that tests many roles
-- (every tenant database, every deployment's owner) reads it once as an
-- uncorrelated subquery (`IN (SELECT ... FROM nx._tenant_roles())`): a
-- call of _is_tenant per row cost ~15 us, and the quota check tests every
-- tenant database every nx.database_quota_interval.
CREATE FUNCTION nx._tenant_roles() RETURNS SETOF oid
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT m.member FROM pg_auth_members m
	WHERE m.roleid = (SELECT r.oid FROM pg_roles r WHERE r.rolname = 'nx_tenant')
$$;

-- _desired_deployments: what the supervisor must have running, with
-- everything a start needs: limits, the app's argv (args with $NAME
-- expanded) and its whole environment (the platform's variables, then the
-- sandbox's env, then the deployment's own overrides: the last one wins).
-- pg_socket_dir and pg_port say where the cluster's unix socket is (the
-- parameters are not named after columns: with #variable_conflict
-- use_column a column of the same name would win).
-- Its database: the sandbox's for database_mode production; for branch
-- and empty its own (nx_<sandbox>_<id>, with its own role and password):
-- such a deployment never gets production's credentials, whatever the
-- sandbox's env says (PG* and DATABASE_URL are reserved names).
-- database_ready: that database exists, owned by its role, the role is a
-- member of nx_tenant (a role restored without the membership would not
-- be confined: nothing starts until it is), and a branch's copy finished.
-- only_deployments: those deployments' rows, the ones desired running
-- (the start fast path, and a pass's starts), instead of all.
-- details false: the same rows with argv, envp and database_ready NULL:
-- enough for a pass to see that a running deployment is still wanted as
-- it is, without building every deployment's argv and environment and
-- checking its database (30-40 ms at 1,000 deployments, against ~1 ms).
-- PL/pgSQL, with generic plans, so that the supervisor's session plans
-- the query once: as a SQL function (SET clauses keep it from being
-- inlined) it was parsed and planned at every call, 3.0 ms of a one-
-- deployment read at 300 deployments, against 1.0 ms now.  The rows are
-- picked by id (ids): the deployments asked for, or every one desired
-- running, so that the one generic plan uses the primary key either way.
-- Only the supervisor calls this: it returns secrets.
CREATE FUNCTION nx._desired_deployments(pg_socket_dir text, pg_port text,
										only_deployments bigint[] DEFAULT NULL,
										details boolean DEFAULT true)
RETURNS TABLE (deployment bigint, sandbox text, owner name, database_name name, role_name name,
			   blob text, restart_generation integer, uid_offset integer,
			   memory_limit bigint, pids_limit integer, open_files_limit integer,
			   cpu_weight integer, tmp_size bigint, argv text[], envp text[],
			   database_ready boolean, binary_name text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
DECLARE
	ids bigint[] := coalesce(only_deployments,
							 ARRAY(SELECT x.id FROM nx.deployments x
								   WHERE x.desired_state = 'running' AND x.asleep_since IS NULL));
BEGIN
	RETURN QUERY
	SELECT d.id, d.sandbox, s.owner, c.db, c.role, d.blob, d.restart_generation,
		   s.uid_offset, s.memory_limit, s.pids_limit, s.open_files_limit, s.cpu_weight, s.tmp_size,
		   -- (CASE does not evaluate a branch it does not take)
		   CASE WHEN details THEN nx._expand_args(d.args, jsonb_build_object(
			   'PORT', d.port::text, 'NX_SANDBOX', d.sandbox, 'NX_DEPLOYMENT', d.id::text,
			   'PGHOST', pg_socket_dir, 'PGPORT', pg_port, 'PGDATABASE', c.db,
			   'PGUSER', c.role)) END,
		   CASE WHEN details THEN ARRAY['PATH=/usr/local/bin:/usr/bin:/bin', 'HOME=/tmp', 'TMPDIR=/tmp', 'LANG=C.UTF-8',
				 'PORT=' || d.port,
				 format('DATABASE_URL=postgresql://%s:%s@/%s?host=%s&port=%s',
						c.role, c.password, c.db, pg_socket_dir, pg_port),
				 'PGHOST=' || pg_socket_dir, 'PGPORT=' || pg_port, 'PGDATABASE=' || c.db,
				 'PGUSER=' || c.role, 'PGPASSWORD=' || c.password,
				 'NX_SANDBOX=' || d.sandbox, 'NX_DEPLOYMENT=' || d.id,
				 'NX_DATABASE_MODE=' || d.database_mode]
		   || coalesce((SELECT array_agg(e.name || '=' || e.value ORDER BY e.name)
						FROM nx.env e WHERE e.sandbox = d.sandbox), '{}')
		   || coalesce((SELECT array_agg(k || '=' || v ORDER BY k)
						FROM jsonb_each_text(d.env) AS x(k, v)), '{}') END,
		   -- the database exists and its owner is the tenant role
		   CASE WHEN details THEN EXISTS (SELECT 1 FROM pg_database db JOIN pg_roles r ON r.oid = db.datdba
				   WHERE db.datname = c.db AND r.rolname = c.role
					 AND r.oid IN (SELECT t.oid FROM nx._tenant_roles() AS t(oid)))
		   AND (d.database_mode = 'production'
				OR EXISTS (SELECT 1 FROM nx.branches b WHERE b.deployment = d.id AND b.state = 'ready')) END,
		   d.binary_name
	FROM nx.deployments d
	JOIN nx.sandboxes s ON s.name = d.sandbox
	CROSS JOIN LATERAL (
		SELECT s.database_name AS db, s.role_name AS role, p.db_password AS password
		FROM nx.sandbox_secrets p WHERE p.sandbox = s.name AND d.database_mode = 'production'
		UNION ALL
		SELECT nx._branch_name(d.sandbox, d.id), nx._branch_name(d.sandbox, d.id), q.db_password
		FROM nx.deployment_secrets q WHERE q.deployment = d.id AND d.database_mode <> 'production'
	) c
	WHERE d.desired_state = 'running' AND d.asleep_since IS NULL
	  AND d.id = ANY (ids)
	-- in the order asked (the fast path's queue: the first woken starts
	-- first when start slots are short), else by id
	ORDER BY array_position(only_deployments, d.id), d.id;
END
$$;

-- _desired_branches: the databases of their own that branch and empty
-- deployments (not removed) need, for the supervisor to create (copying
-- production's for a branch) and to keep; with the production database
-- and credentials a branch is copied from, the role's password and
-- connection limit, and the nx.branches row's state so far.
CREATE FUNCTION nx._desired_branches()
RETURNS TABLE (deployment bigint, sandbox text, database_mode text, database_name name,
			   role_name name, password text, connection_limit integer,
			   source_database name, source_role name, source_password text,
			   state text, attempts integer)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT d.id, d.sandbox, d.database_mode,
		   nx._branch_name(d.sandbox, d.id), nx._branch_name(d.sandbox, d.id), q.db_password,
		   s.connection_limit, s.database_name, s.role_name, p.db_password,
		   b.state, coalesce(b.attempts, 0)
	FROM nx.deployments d
	JOIN nx.sandboxes s ON s.name = d.sandbox
	JOIN nx.sandbox_secrets p ON p.sandbox = s.name
	JOIN nx.deployment_secrets q ON q.deployment = d.id
	LEFT JOIN nx.branches b ON b.deployment = d.id
	WHERE d.database_mode <> 'production' AND d.desired_state <> 'removed'
	ORDER BY d.id
$$;

-- _tenant_databases: every tenant database and the sandbox whose
-- database_quota it counts against: the sandbox's own, and the databases
-- of its branch and empty deployments (nx.branches).  Only databases that
-- exist and belong to a tenant role.
CREATE FUNCTION nx._tenant_databases()
RETURNS TABLE (sandbox text, database_name name, database_oid oid)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT x.sandbox, x.db, pd.oid
	FROM (SELECT s.name, s.database_name FROM nx.sandboxes s
		  UNION ALL
		  SELECT d.sandbox, b.database_name
		  FROM nx.branches b JOIN nx.deployments d ON d.id = b.deployment) x (sandbox, db)
	JOIN pg_database pd ON pd.datname = x.db
	WHERE pd.datdba IN (SELECT t.oid FROM nx._tenant_roles() AS t(oid))
$$;

-- _quota_pass: the supervisor's database quota check, every
-- nx.database_quota_interval (src/supervisor/quota.c).
--   1. measures (pg_database_size: a stat of each file, no lock) the
--      tenant databases that may have grown since their last measurement:
--      a session at work in it now or then, a session that went idle
--      since, or rows written (inserted, updated, deleted: catalogs
--      included, so CREATE TABLE and CREATE INDEX count) or sessions begun
--      in its statistics (a session that came and went); all of them when
--      measure_all.  An autovacuum worker counts only once it has worked
--      there for autovacuum_grace (quota.c passes its
--      NX_QUOTA_AUTOVACUUM_GRACE_MS, 5 s, which its gate uses too): it
--      visits every database every autovacuum_naptime, which made each
--      database measured every minute, but a visit to an idle one takes
--      milliseconds, and a long one may run the tenant's code (ANALYZE
--      evaluates its index and statistics expressions);
--   2. a sandbox whose databases together are past its database_quota is
--      over quota: a row in nx.over_quota and an event database_over_quota;
--      back at or under: event database_under_quota;
--   3. ends tenant sessions idle in a transaction for longer than
--      idle_limit (NULL: none), which a tenant's own SET cannot lift;
--   4. returns every tenant database with its figures, for the backends'
--      write checks (src/tenant/quota_hook.c): whether its sandbox is over
--      quota, the size it may reach itself (the quota less what the
--      sandbox's other databases use), and whether it went over in this
--      pass: once the backends know, the supervisor cancels the statements
--      still running there (nx._quota_cancel).
CREATE FUNCTION nx._quota_pass(measure_all boolean, idle_limit interval, autovacuum_grace interval)
RETURNS TABLE (database_oid oid, over boolean, limit_bytes bigint, used_bytes bigint,
			   quota_bytes bigint, newly_over boolean)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r record;
	event_id bigint;
BEGIN
	WITH t AS (SELECT * FROM nx._tenant_databases()),
	act AS (SELECT a.datid, bool_or(a.state IS DISTINCT FROM 'idle') AS busy,
				   max(a.state_change) AS last_change
			FROM pg_stat_activity a
			WHERE a.datid IS NOT NULL
			  AND (a.backend_type <> 'autovacuum worker' OR a.backend_start < now() - autovacuum_grace)
			GROUP BY a.datid),
	now_seen AS (SELECT t.*, coalesce(act.busy, false) AS busy, act.last_change,
						pg_stat_get_db_tuples_inserted(t.database_oid) + pg_stat_get_db_tuples_updated(t.database_oid)
						+ pg_stat_get_db_tuples_deleted(t.database_oid) + pg_stat_get_db_sessions(t.database_oid) AS activity
				 FROM t LEFT JOIN act ON act.datid = t.database_oid),
	m AS (SELECT n.* FROM now_seen n
		  LEFT JOIN nx.database_usage o ON o.database_name = n.database_name
		  WHERE measure_all OR o.database_name IS NULL OR o.busy OR n.busy
			 OR n.last_change >= o.measured_at OR o.sandbox <> n.sandbox
			 OR o.activity <> n.activity)
	INSERT INTO nx.database_usage AS u (database_name, sandbox, size_bytes, busy, activity, measured_at)
	SELECT m.database_name, m.sandbox, pg_database_size(m.database_oid), m.busy, m.activity, now()
	FROM m
	ON CONFLICT (database_name) DO UPDATE
	SET sandbox = excluded.sandbox, size_bytes = excluded.size_bytes, busy = excluded.busy,
		activity = excluded.activity, measured_at = excluded.measured_at;
	DELETE FROM nx.database_usage u
	WHERE NOT EXISTS (SELECT 1 FROM nx._tenant_databases() t WHERE t.database_name = u.database_name);

	FOR r IN
		SELECT s.name, s.owner, s.database_quota AS quota,
			   coalesce(sum(u.size_bytes), 0)::bigint AS used, o.sandbox IS NOT NULL AS was_over
		FROM nx.sandboxes s
		LEFT JOIN nx.database_usage u ON u.sandbox = s.name
		LEFT JOIN nx.over_quota o ON o.sandbox = s.name
		GROUP BY s.name, s.owner, s.database_quota, o.sandbox
		HAVING coalesce(sum(u.size_bytes), 0) > s.database_quota OR o.sandbox IS NOT NULL
	LOOP
		IF (r.used > r.quota) <> r.was_over THEN
			IF r.used > r.quota THEN
				INSERT INTO nx.over_quota (sandbox, used_bytes, quota_bytes, since)
				VALUES (r.name, r.used, r.quota, now());
			ELSE
				DELETE FROM nx.over_quota o WHERE o.sandbox = r.name;
			END IF;
			INSERT INTO nx.events (actor, owner, action, sandbox, details)
			VALUES ('supervisor', r.owner,
					CASE WHEN r.used > r.quota THEN 'database_over_quota' ELSE 'database_under_quota' END, r.name,
					jsonb_build_object('used_bytes', r.used, 'quota_bytes', r.quota,
									   'used', pg_size_pretty(r.used), 'quota', pg_size_pretty(r.quota)))
			RETURNING id INTO event_id;
			PERFORM pg_notify('nx_events', json_build_object('id', event_id)::text);
		ELSE
			UPDATE nx.over_quota o SET used_bytes = r.used, quota_bytes = r.quota
			WHERE o.sandbox = r.name AND (o.used_bytes, o.quota_bytes) IS DISTINCT FROM (r.used, r.quota);
		END IF;
	END LOOP;
	DELETE FROM nx.over_quota o WHERE NOT EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name = o.sandbox);

	IF idle_limit IS NOT NULL THEN
		PERFORM pg_terminate_backend(a.pid)
		FROM pg_stat_activity a JOIN nx._tenant_databases() t ON t.database_oid = a.datid
		WHERE a.state LIKE 'idle in transaction%' AND a.state_change < now() - idle_limit
		  AND a.backend_type = 'client backend' AND nx._is_tenant(a.usesysid);
	END IF;

	RETURN QUERY
		WITH total AS (SELECT u.sandbox, sum(u.size_bytes)::bigint AS used
					   FROM nx.database_usage u GROUP BY u.sandbox)
		SELECT t.database_oid, o.sandbox IS NOT NULL,
			   s.database_quota - (coalesce(total.used, 0) - coalesce(u.size_bytes, 0)),
			   coalesce(total.used, 0), s.database_quota, coalesce(o.since = now(), false)
		FROM nx._tenant_databases() t
		JOIN nx.sandboxes s ON s.name = t.sandbox
		LEFT JOIN nx.database_usage u ON u.database_name = t.database_name
		LEFT JOIN total ON total.sandbox = t.sandbox
		LEFT JOIN nx.over_quota o ON o.sandbox = t.sandbox
		ORDER BY t.database_oid;
END
$$;

-- _quota_cancel: cancel the statements tenants are running in these
-- databases (just gone over quota); returns how many.
CREATE FUNCTION nx._quota_cancel(databases oid[]) RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT count(*) FILTER (WHERE pg_cancel_backend(a.pid))::integer
	FROM pg_stat_activity a
	WHERE a.datid = ANY (databases) AND a.state = 'active' AND a.backend_type = 'client backend'
	  AND nx._is_tenant(a.usesysid)
$$;
