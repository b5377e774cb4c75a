-- nx_sandbox 0.1.0 -> 0.2.0: the supervisor.
-- Adds each sandbox's tenant uid offset, the runtime table the supervisor
-- reports in, the actual state in nx.status, nx.logs and nx.check_setup,
-- and the commit-time wake-up of the supervisor.  The definitions below are
-- copied from src/sql/*.sql; t/004_upgrade.pl checks that an upgraded
-- database matches a fresh 0.2.0 install.

\echo Use "ALTER EXTENSION nx_sandbox UPDATE TO '0.2.0'" to load this file. \quit

-- the router's login (see 00_roles.sql)
DO $roles$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'nx_router') THEN
		CREATE ROLE nx_router LOGIN;
	END IF;
END
$roles$;

CREATE OR REPLACE FUNCTION nx._wake_supervisor() RETURNS void
	AS 'MODULE_PATHNAME', 'nx_wake_supervisor' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE OR REPLACE FUNCTION nx._supervisor_pid() RETURNS integer
	AS 'MODULE_PATHNAME', 'nx_supervisor_pid' LANGUAGE C VOLATILE PARALLEL SAFE;
CREATE OR REPLACE FUNCTION nx._event(action text, sandbox text, deployment bigint,
						  owner name, details jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	event_id bigint;
BEGIN
	INSERT INTO nx.events (actor, owner, action, sandbox, deployment, details)
	VALUES (nx._caller(), owner, action, sandbox, deployment, details)
	RETURNING id INTO event_id;
	PERFORM pg_notify('nx_events', json_build_object('id', event_id)::text);
	PERFORM nx._wake_supervisor();
	RETURN event_id;
END
$$;
CREATE OR REPLACE FUNCTION nx._require_sandbox(sandbox text) RETURNS nx.sandboxes
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes;
BEGIN
	IF sandbox IS NULL THEN
		RAISE EXCEPTION 'sandbox name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO s FROM nx.sandboxes WHERE name = sandbox;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'sandbox "%" does not exist', left(sandbox, 60)
			USING ERRCODE = 'undefined_object',
				HINT = 'Create it with nx.create_sandbox(), or list yours with SELECT name FROM nx.sandboxes.';
	END IF;
	IF NOT nx._may_act(s.owner, nx._caller()) THEN
		RAISE EXCEPTION 'permission denied for sandbox "%"', sandbox
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = 'Only its owner and members of nx_admin may act on a sandbox.';
	END IF;
	RETURN s;
END
$$;
CREATE OR REPLACE FUNCTION nx._sandbox_for_update(sandbox text) RETURNS nx.sandboxes
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._require_sandbox(sandbox);
BEGIN
	SELECT * INTO s FROM nx.sandboxes x WHERE x.name = s.name FOR UPDATE;
	IF NOT FOUND THEN
		-- dropped between the check and the lock
		RAISE EXCEPTION 'sandbox "%" does not exist', left(sandbox, 60)
			USING ERRCODE = 'undefined_object';
	END IF;
	RETURN s;
END
$$;

CREATE OR REPLACE FUNCTION nx.database_url(sandbox text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._require_sandbox(database_url.sandbox);
	socket_dir text := trim(split_part(current_setting('unix_socket_directories'), ',', 1));
BEGIN
	-- role and database names are [a-z0-9_-], the password [a-z2-7]: only
	-- the socket directory needs percent-encoding
	RETURN format('postgresql://%s:%s@/%s?host=%s&port=%s',
		s.role_name, s.db_password, s.database_name,
		replace(replace(replace(socket_dir, '%', '%25'), '&', '%26'), ' ', '%20'),
		current_setting('port'));
END
$$;
-- new blobs are compressed with lz4 where the server has it (10_tables.sql)
DO $lz4$
BEGIN
	ALTER TABLE nx.blobs ALTER COLUMN bytes SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;
END
$lz4$;

-- every existing sandbox gets its own uid offset, in creation order
ALTER TABLE nx.sandboxes ADD COLUMN uid_offset integer;
UPDATE nx.sandboxes s SET uid_offset = o.n
FROM (SELECT name, row_number() OVER (ORDER BY created_at, name) AS n FROM nx.sandboxes) o
WHERE o.name = s.name;
ALTER TABLE nx.sandboxes ALTER COLUMN uid_offset SET NOT NULL;
ALTER TABLE nx.sandboxes ADD CONSTRAINT sandboxes_uid_offset_key UNIQUE (uid_offset);
ALTER TABLE nx.sandboxes ADD CONSTRAINT sandboxes_uid_offset_check CHECK (uid_offset BETWEEN 1 AND 16777215);
COMMENT ON COLUMN nx.sandboxes.uid_offset IS 'The sandbox runs as host uid (start of the cluster user''s /etc/subuid range) + uid_offset';

CREATE OR REPLACE FUNCTION nx.create_sandbox(
	name text,
	memory_limit text DEFAULT NULL,
	pids_limit integer DEFAULT NULL,
	open_files_limit integer DEFAULT NULL,
	cpu_weight integer DEFAULT NULL,
	tmp_size text DEFAULT NULL,
	idle_timeout interval DEFAULT NULL,
	connection_limit integer DEFAULT NULL,
	owner name DEFAULT NULL)
RETURNS nx.sandbox_info
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller name := nx._caller();
	new_owner name := coalesce(create_sandbox.owner, caller);
	s nx.sandboxes;
	max_sandboxes integer := nx._setting('nx.max_sandboxes')::integer;
BEGIN
	PERFORM nx._check_name(create_sandbox.name);
	IF new_owner <> caller THEN
		IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = new_owner) THEN
			RAISE EXCEPTION 'role "%" does not exist', new_owner USING ERRCODE = 'undefined_object';
		END IF;
		-- a team role may own sandboxes its members create; anyone else's
		-- only nx_admin may create
		IF NOT nx._may_act(new_owner, caller) THEN
			RAISE EXCEPTION 'permission denied to create a sandbox for role "%"', new_owner
				USING ERRCODE = 'insufficient_privilege',
					HINT = 'Members of a role may create sandboxes it owns; members of nx_admin may create them for anyone.';
		END IF;
	END IF;

	-- serialize creations so that nx.max_sandboxes holds under concurrency
	PERFORM pg_advisory_xact_lock(28280, 2);
	IF EXISTS (SELECT 1 FROM nx.sandboxes x WHERE x.name = create_sandbox.name) THEN
		RAISE EXCEPTION 'sandbox "%" already exists', create_sandbox.name
			USING ERRCODE = 'duplicate_object', HINT = 'Choose another name.';
	END IF;
	IF EXISTS (SELECT 1 FROM nx.kept_databases k WHERE k.sandbox = create_sandbox.name) THEN
		RAISE EXCEPTION 'sandbox name "%" is not free: its database was kept when it was dropped', create_sandbox.name
			USING ERRCODE = 'duplicate_object',
				DETAIL = format('Database %s is listed in nx.kept_databases.', quote_ident('nx_' || create_sandbox.name)),
				HINT = 'Choose another name, or remove the kept database with nx.drop_kept_database().';
	END IF;
	IF (SELECT count(*) FROM nx.sandboxes) >= max_sandboxes THEN
		RAISE EXCEPTION 'cannot create sandbox "%": the cluster already holds % sandboxes', create_sandbox.name, max_sandboxes
			USING ERRCODE = 'configuration_limit_exceeded',
				HINT = 'Drop unused sandboxes, or raise nx.max_sandboxes.';
	END IF;

	BEGIN
		INSERT INTO nx.sandboxes (name, owner, role_name, database_name, db_password,
			memory_limit, pids_limit, open_files_limit, cpu_weight, tmp_size,
			idle_timeout, connection_limit, created_by, uid_offset)
		VALUES (create_sandbox.name, new_owner, 'nx_' || create_sandbox.name,
			'nx_' || create_sandbox.name, nx._random_token(32),
			pg_size_bytes(coalesce(create_sandbox.memory_limit, nx._setting('nx.default_memory_limit'))),
			coalesce(create_sandbox.pids_limit, nx._setting('nx.default_pids_limit')::integer),
			coalesce(create_sandbox.open_files_limit, nx._setting('nx.default_open_files_limit')::integer),
			coalesce(create_sandbox.cpu_weight, nx._setting('nx.default_cpu_weight')::integer),
			pg_size_bytes(coalesce(create_sandbox.tmp_size, nx._setting('nx.default_tmp_size'))),
			coalesce(create_sandbox.idle_timeout, nx._setting('nx.default_idle_timeout')::interval),
			coalesce(create_sandbox.connection_limit, nx._setting('nx.default_connection_limit')::integer),
			caller,
			-- the lowest free offset into the cluster user's subordinate
			-- uid range (creations are serialized by the lock above)
			(SELECT min(g) FROM generate_series(1, (SELECT count(*) FROM nx.sandboxes)::integer + 1) g
			 WHERE NOT EXISTS (SELECT 1 FROM nx.sandboxes x WHERE x.uid_offset = g)))
		RETURNING * INTO s;
	EXCEPTION WHEN check_violation THEN
		RAISE EXCEPTION 'limit out of range for sandbox "%"', create_sandbox.name
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'memory_limit 16MB..1TB, pids_limit 8..65536, open_files_limit 64..1048576, cpu_weight 1..10000, tmp_size 1MB..64GB, idle_timeout 0..30 days (0 = never stop), connection_limit 1..10000.',
				HINT = 'Sizes are text such as ''512MB''; idle_timeout is an interval such as ''10 minutes''.';
	END;

	PERFORM nx._event('create_sandbox', s.name, NULL, s.owner,
		jsonb_build_object('memory_limit', s.memory_limit, 'pids_limit', s.pids_limit,
			'open_files_limit', s.open_files_limit, 'cpu_weight', s.cpu_weight,
			'tmp_size', s.tmp_size, 'idle_timeout', s.idle_timeout::text,
			'connection_limit', s.connection_limit));
	RETURN (SELECT i FROM nx.sandbox_info i WHERE i.sandbox = s.name);
END
$$;
-- What the supervisor sees of each deployment it runs: derived state, not
-- part of any dump (unlogged, and not a configuration table), rebuilt by
-- the supervisor after every restart.  No foreign key: a row may briefly
-- outlive its deployment.
CREATE UNLOGGED TABLE nx.runtime (
	deployment		bigint PRIMARY KEY,
	state			text NOT NULL,
	pid				integer,
	started_at		timestamptz,
	ready_at		timestamptz,
	restarts		integer NOT NULL DEFAULT 0,
	exit_code		integer,
	exit_signal		integer,
	last_error		text,
	memory_bytes	bigint,
	cpu_usec		bigint,
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE nx.runtime IS 'Supervisor''s view of running deployments (derived state, not dumped)';

CREATE OR REPLACE VIEW nx.status WITH (security_invoker = true) AS
SELECT d.sandbox,
	   d.id AS deployment,
	   d.label,
	   d.port,
	   nx._url(nx._preview_host(d.slug)) AS preview_url,
	   d.is_production AS production,
	   CASE WHEN d.is_production THEN nx._url(nx._production_host(d.sandbox)) END AS production_url,
	   d.desired_state,
	   d.blob AS sha256,
	   b.size,
	   d.created_by,
	   d.created_at,
	   coalesce(r.state, CASE WHEN d.desired_state OPERATOR(pg_catalog.=) 'running' THEN 'pending' ELSE 'stopped' END) AS state,
	   r.pid,
	   r.started_at,
	   r.ready_at,
	   coalesce(r.restarts, 0) AS restarts,
	   r.exit_code AS last_exit_code,
	   r.exit_signal AS last_signal,
	   coalesce(r.last_error,
				CASE WHEN d.desired_state OPERATOR(pg_catalog.=) 'running' AND nx._supervisor_pid() OPERATOR(pg_catalog.=) 0
					 THEN 'the supervisor is not running (needs shared_preload_libraries = ''nx_sandbox'' and nx.supervisor = on)' END) AS last_error,
	   r.memory_bytes,
	   r.cpu_usec
FROM nx.deployments d
JOIN nx.blobs b ON b.sha256 OPERATOR(pg_catalog.=) d.blob
LEFT JOIN nx.runtime r ON r.deployment OPERATOR(pg_catalog.=) d.id
WHERE d.desired_state OPERATOR(pg_catalog.<>) 'removed';
COMMENT ON VIEW nx.status IS 'One row per deployment: port, URLs, desired and actual state';

CREATE OR REPLACE FUNCTION nx._set_desired_state(deployment bigint, action text, new_state text,
									  bump_generation boolean) RETURNS nx.status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d nx.deployments := nx._deployment_for_update(deployment);
	owner name := (SELECT s.owner FROM nx.sandboxes s WHERE s.name = d.sandbox);
	running boolean := EXISTS (SELECT 1 FROM nx.runtime r WHERE r.deployment = d.id
							   AND r.state IN ('starting', 'ready'));
BEGIN
	PERFORM nx._require_live(d, action);
	IF action = 'start' AND NOT running THEN
		bump_generation := true;
	END IF;
	UPDATE nx.deployments x
	SET desired_state = new_state,
		restart_generation = x.restart_generation + CASE WHEN bump_generation THEN 1 ELSE 0 END
	WHERE x.id = d.id;
	PERFORM nx._event(action, d.sandbox, d.id, owner,
		jsonb_build_object('from', d.desired_state, 'to', new_state));
	PERFORM nx._routes_changed();
	RETURN (SELECT st FROM nx.status st WHERE st.deployment = d.id);
END
$$;
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
			USING ERRCODE = 'invalid_parameter_value';
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
	fix := CASE WHEN NOT ok THEN format('set nx.database = %L (and nx.supervisor = on) in postgresql.conf and restart', current_database()) END;
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

	RETURN QUERY SELECT * FROM nx._host_checks();
END
$$;

-- router_routes: what the router needs and nothing more: each host it
-- serves, the deployment behind it and whether that should be running.
-- The router logs in as nx_router, which may call this function and
-- nothing else in schema nx.
CREATE FUNCTION nx.router_routes() RETURNS TABLE (host text, deployment bigint, desired_state text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.host, r.deployment, r.desired_state FROM nx.routes r $$;

ALTER TABLE nx.runtime ENABLE ROW LEVEL SECURITY;
CREATE POLICY runtime_visible ON nx.runtime FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id OPERATOR(pg_catalog.=) deployment));
REVOKE ALL ON nx.runtime FROM PUBLIC;
GRANT SELECT ON nx.runtime TO nx_user;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA nx FROM PUBLIC;
GRANT EXECUTE ON FUNCTION nx.logs(text, bigint, integer) TO nx_user;
GRANT EXECUTE ON FUNCTION nx.check_setup() TO nx_admin;
GRANT EXECUTE ON FUNCTION nx._supervisor_pid() TO nx_user;
GRANT USAGE ON SCHEMA nx TO nx_router;
GRANT EXECUTE ON FUNCTION nx.router_routes() TO nx_router;
