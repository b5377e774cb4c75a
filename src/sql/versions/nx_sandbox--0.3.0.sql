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
-- 10_tables.sql: the platform state.  Every table and sequence here is an
-- extension configuration table (see 90_security.sql), so pg_dump of this
-- database carries all of it, binaries included.  Processes, roles,
-- databases and files are derived from these rows, never the other way.

-- A sandbox: one app, its limits, its database and role (created by the
-- supervisor from this row).  owner is a role name, not an OID or regrole,
-- so that a dump restores even before the roles are recreated.
CREATE TABLE nx.sandboxes (
	name			text PRIMARY KEY
					CHECK (name ~ '^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$'),
	owner			name NOT NULL,
	role_name		name NOT NULL UNIQUE,
	database_name	name NOT NULL UNIQUE,
	db_password		text NOT NULL CHECK (db_password ~ '^[a-z2-7]{32}$'),
	memory_limit	bigint NOT NULL CHECK (memory_limit BETWEEN 16777216 AND 1099511627776),
	pids_limit		integer NOT NULL CHECK (pids_limit BETWEEN 8 AND 65536),
	open_files_limit integer NOT NULL CHECK (open_files_limit BETWEEN 64 AND 1048576),
	cpu_weight		integer NOT NULL CHECK (cpu_weight BETWEEN 1 AND 10000),
	tmp_size		bigint NOT NULL CHECK (tmp_size BETWEEN 1048576 AND 68719476736),
	idle_timeout	interval NOT NULL CHECK (idle_timeout BETWEEN '0' AND '30 days'),
	connection_limit integer NOT NULL CHECK (connection_limit BETWEEN 1 AND 10000),
	created_by		name NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	uid_offset		integer NOT NULL UNIQUE CHECK (uid_offset BETWEEN 1 AND 16777215)
);
COMMENT ON TABLE nx.sandboxes IS 'One row per sandbox (app): owner, limits, database and role names';
COMMENT ON COLUMN nx.sandboxes.uid_offset IS 'The sandbox runs as host uid (start of the cluster user''s /etc/subuid range) + uid_offset';

-- A pushed binary, stored once however often it is pushed (content address).
CREATE TABLE nx.blobs (
	sha256			text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	size			bigint NOT NULL CHECK (size > 0),
	bytes			bytea NOT NULL,
	machine			text NOT NULL,
	linkage			text NOT NULL CHECK (linkage IN ('static', 'dynamic')),
	interpreter		text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE nx.blobs IS 'Pushed binaries, content-addressed by sha256';
-- lz4 instead of pglz: storing a 767 kB binary took 34.6 ms with pglz,
-- 18.0 ms with lz4 (bench/push_to_ready.sh), for nearly the same size.
-- Servers built without lz4 keep the default.
DO $lz4$
BEGIN
	ALTER TABLE nx.blobs ALTER COLUMN bytes SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
	NULL;
END
$lz4$;

-- A deployment: one binary (and its args/env) in one sandbox, with its own
-- port and preview slug.  Removed deployments stay as history with their
-- port released (NULL); at most one per sandbox is production.
CREATE TABLE nx.deployments (
	id				bigserial PRIMARY KEY,
	sandbox			text NOT NULL REFERENCES nx.sandboxes (name),
	blob			text NOT NULL REFERENCES nx.blobs (sha256),
	label			text CHECK (label ~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$'),
	args			text[] NOT NULL DEFAULT '{}',
	env				jsonb NOT NULL DEFAULT '{}' CHECK (pg_catalog.jsonb_typeof(env) = 'object'),
	port			integer UNIQUE CHECK (port BETWEEN 1024 AND 65535),
	slug			text NOT NULL UNIQUE CHECK (slug ~ '^[a-z2-7]{16}$'),
	desired_state	text NOT NULL DEFAULT 'running'
					CHECK (desired_state IN ('running', 'stopped', 'removed')),
	is_production	boolean NOT NULL DEFAULT false,
	restart_generation integer NOT NULL DEFAULT 0,
	created_by		name NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	removed_at		timestamptz,
	asleep_since	timestamptz,
	CHECK ((desired_state = 'removed') = (port IS NULL)),
	CHECK ((desired_state = 'removed') = (removed_at IS NOT NULL)),
	CHECK (NOT (is_production AND desired_state = 'removed')),
	CONSTRAINT deployments_asleep_only_running CHECK (asleep_since IS NULL OR desired_state = 'running')
);
CREATE UNIQUE INDEX deployments_one_production ON nx.deployments (sandbox) WHERE is_production;
CREATE INDEX deployments_sandbox ON nx.deployments (sandbox, id);
CREATE INDEX deployments_blob ON nx.deployments (blob);
COMMENT ON TABLE nx.deployments IS 'Pushed binaries placed in a sandbox, each with a port and a preview URL';
COMMENT ON COLUMN nx.deployments.restart_generation IS 'Bumped by nx.restart; the supervisor restarts a deployment whose generation changed';
COMMENT ON COLUMN nx.deployments.asleep_since IS 'Set when the supervisor stopped it for being idle (scale to zero); the next request for it wakes it (nx.wake)';

-- Promotion history.  kind = 'rollback' rows undo the promotion in reverts;
-- rollback walks back through the promotions no rollback has undone yet.
CREATE TABLE nx.promotions (
	id				bigserial PRIMARY KEY,
	sandbox			text NOT NULL REFERENCES nx.sandboxes (name),
	deployment		bigint NOT NULL REFERENCES nx.deployments (id),
	previous		bigint REFERENCES nx.deployments (id),
	kind			text NOT NULL CHECK (kind IN ('promote', 'rollback')),
	reverts			bigint REFERENCES nx.promotions (id),
	promoted_by		name NOT NULL,
	promoted_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CHECK ((kind = 'rollback') = (reverts IS NOT NULL))
);
CREATE INDEX promotions_sandbox ON nx.promotions (sandbox, id);
COMMENT ON TABLE nx.promotions IS 'Which deployment became production when, by whom';

-- Per-sandbox environment variables (secrets: no status view shows them).
CREATE TABLE nx.env (
	sandbox			text NOT NULL REFERENCES nx.sandboxes (name),
	name			text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
	value			text NOT NULL CHECK (pg_catalog.octet_length(value) <= 32768),
	updated_by		name NOT NULL,
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	PRIMARY KEY (sandbox, name)
);
COMMENT ON TABLE nx.env IS 'Environment variables given to every deployment of a sandbox';

-- Databases (and their roles) that nx.drop_sandbox(..., keep_database =>
-- true) left in place: the supervisor must not drop them.
CREATE TABLE nx.kept_databases (
	database_name	name PRIMARY KEY,
	role_name		name NOT NULL,
	sandbox			text NOT NULL,
	owner			name NOT NULL,
	kept_by			name NOT NULL,
	kept_at			timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE nx.kept_databases IS 'Databases of dropped sandboxes kept at the owner''s request';

-- Append-only audit of every control action and state change.  owner is
-- copied in so that row-level security still works after the sandbox is
-- dropped (and a later sandbox of the same name does not see it).
CREATE TABLE nx.events (
	id				bigserial PRIMARY KEY,
	at				timestamptz NOT NULL DEFAULT pg_catalog.now(),
	actor			name NOT NULL,
	owner			name NOT NULL,
	action			text NOT NULL,
	sandbox			text,
	deployment		bigint,
	details			jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX events_sandbox ON nx.events (sandbox, id);
COMMENT ON TABLE nx.events IS 'Audit log of control actions and state changes; NOTIFY nx_events on each';

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

-- Custom domains: a host name of the owner's that reaches the sandbox's
-- production deployment, like <sandbox>.<nx.domain> does.
CREATE TABLE nx.domains (
	domain			text PRIMARY KEY
					CHECK (pg_catalog.length(domain) <= 253
						   AND domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
	sandbox			text NOT NULL REFERENCES nx.sandboxes (name),
	created_by		name NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE INDEX domains_sandbox ON nx.domains (sandbox);
COMMENT ON TABLE nx.domains IS 'Custom host names routed to a sandbox''s production deployment';

-- What the router sees of each deployment's traffic (derived state, like
-- nx.runtime: unlogged, not dumped).  The router reports every second
-- (nx.report_activity); the supervisor stops a deployment whose sandbox's
-- idle_timeout has passed since its last activity with no connection open.
CREATE UNLOGGED TABLE nx.activity (
	deployment		bigint PRIMARY KEY,
	open_connections integer NOT NULL DEFAULT 0,
	connections		bigint NOT NULL DEFAULT 0,
	bytes_in		bigint NOT NULL DEFAULT 0,
	bytes_out		bigint NOT NULL DEFAULT 0,
	last_activity	timestamptz,
	updated_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE nx.activity IS 'Router''s per-deployment traffic counters (derived state, not dumped)';

-- When the router last reported.  Idle stop acts only while reports are
-- fresh: without a router nothing could wake a stopped deployment, and a
-- stale report could hide a connection.
CREATE UNLOGGED TABLE nx.router_heartbeat (
	id				boolean PRIMARY KEY DEFAULT true CHECK (id),
	reported_at		timestamptz NOT NULL,
	reporter		name NOT NULL
);
COMMENT ON TABLE nx.router_heartbeat IS 'Time of the router''s last activity report (one row)';
-- 20_helpers.sql: internal helpers of the SQL API (names start with "_").
-- Every function that runs with the extension owner's rights is SECURITY
-- DEFINER with search_path pinned to pg_catalog, pg_temp, and names every
-- nx object schema-qualified.

-- The C helpers (src/api/identity.c).
CREATE FUNCTION nx._caller() RETURNS name
	AS 'MODULE_PATHNAME', 'nx_caller' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION nx._caller() IS 'The role a control function acts for: the outer user, unchanged by SECURITY DEFINER';

CREATE FUNCTION nx._setting(setting text) RETURNS text
	AS 'MODULE_PATHNAME', 'nx_setting' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION nx._random_token(length integer) RETURNS text
	AS 'MODULE_PATHNAME', 'nx_random_token' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;

-- (src/api/disk.c) raises disk_full unless a new blob of this size fits
-- on the server's disk with room to spare
CREATE FUNCTION nx._check_disk_space(size bigint) RETURNS void
	AS 'MODULE_PATHNAME', 'nx_check_disk_space' LANGUAGE C VOLATILE STRICT;

-- The supervisor (src/supervisor/wake.c): wake it when this transaction
-- commits; its pid, 0 when none runs.
CREATE FUNCTION nx._wake_supervisor() RETURNS void
	AS 'MODULE_PATHNAME', 'nx_wake_supervisor' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION nx._supervisor_pid() RETURNS integer
	AS 'MODULE_PATHNAME', 'nx_supervisor_pid' LANGUAGE C VOLATILE PARALLEL SAFE;

-- _may_act: may role who act on a sandbox owned by owner?  Yes for the
-- owner, for members of the owner role (a team role can own sandboxes),
-- and for members of nx_admin (superusers are members of every role).
CREATE FUNCTION nx._may_act(owner name, who name) RETURNS boolean
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT who = owner
		OR pg_catalog.pg_has_role(who, 'nx_admin', 'MEMBER')
		OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				   WHERE r.rolname = owner AND pg_catalog.pg_has_role(who, r.oid, 'MEMBER'))
$$;

-- _check_name raises a specific error when name is not a valid sandbox name:
-- a DNS label (it becomes <name>.<domain>) and a role/database suffix.
CREATE FUNCTION nx._check_name(name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rules constant text := 'A sandbox name is 1 to 40 characters: lowercase letters a-z, digits and hyphens, starting with a letter and not ending with a hyphen.';
	-- our own roles are nx_admin, nx_user, nx_tenant, nx_router: the
	-- sandbox role is nx_<name>, so these names would collide with them
	reserved constant text[] := ARRAY['admin', 'user', 'tenant', 'router',
		'nx', 'preview', 'www', 'api', 'postgres', 'root', 'localhost',
		'template0', 'template1', 'default', 'public', 'system'];
BEGIN
	IF name IS NULL THEN
		RAISE EXCEPTION 'sandbox name must not be null'
			USING ERRCODE = 'null_value_not_allowed', DETAIL = rules;
	ELSIF name = '' THEN
		RAISE EXCEPTION 'sandbox name must not be empty'
			USING ERRCODE = 'invalid_name', DETAIL = rules, HINT = 'Use a name such as "my-app".';
	ELSIF length(name) > 40 THEN
		RAISE EXCEPTION 'sandbox name "%" is too long (% characters, at most 40)', left(name, 60), length(name)
			USING ERRCODE = 'invalid_name', DETAIL = rules, HINT = 'Use a shorter name.';
	ELSIF name ~ '[A-Z]' AND lower(name) ~ '^[a-z]([a-z0-9-]*[a-z0-9])?$' THEN
		RAISE EXCEPTION 'sandbox name "%" contains uppercase letters', name
			USING ERRCODE = 'invalid_name', DETAIL = rules,
				HINT = format('Use "%s".', lower(name));
	ELSIF name ~ '[^a-z0-9-]' THEN
		RAISE EXCEPTION 'sandbox name % contains %, which is not allowed',
			quote_literal(name), quote_literal(substring(name from '[^a-z0-9-]'))
			USING ERRCODE = 'invalid_name', DETAIL = rules,
				HINT = 'Quotes, spaces, semicolons, underscores, dots and non-ASCII letters are not allowed.';
	ELSIF name !~ '^[a-z]' THEN
		RAISE EXCEPTION 'sandbox name "%" does not start with a letter', name
			USING ERRCODE = 'invalid_name', DETAIL = rules;
	ELSIF name ~ '-$' THEN
		RAISE EXCEPTION 'sandbox name "%" ends with a hyphen', name
			USING ERRCODE = 'invalid_name', DETAIL = rules;
	ELSIF name = ANY (reserved) THEN
		RAISE EXCEPTION 'sandbox name "%" is reserved', name
			USING ERRCODE = 'reserved_name',
				DETAIL = format('Reserved names: %s.', array_to_string(reserved, ', ')),
				HINT = 'Choose another name.';
	END IF;
END
$$;

-- _require_sandbox returns a sandbox the caller may act on, without locking
-- it (for read-only functions), or raises like _sandbox_for_update.
CREATE FUNCTION nx._require_sandbox(sandbox text) RETURNS nx.sandboxes
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

-- _sandbox_for_update checks, like _require_sandbox, that the caller may act
-- on the sandbox, then locks its row.  Every function that changes a sandbox
-- starts here, so locks are always taken sandbox first, then its
-- deployments: no deadlocks.  The check comes before the lock, so nobody
-- can hold a lock on a sandbox that is not theirs.
CREATE FUNCTION nx._sandbox_for_update(sandbox text) RETURNS nx.sandboxes
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

-- _deployment_for_update finds a deployment by id, locks its sandbox (and
-- checks the caller may act on it), then locks the deployment.
CREATE FUNCTION nx._deployment_for_update(deployment bigint) RETURNS nx.deployments
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	owning_sandbox text;
	owning_owner name;
	d nx.deployments;
BEGIN
	IF deployment IS NULL THEN
		RAISE EXCEPTION 'deployment id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT dep.sandbox, s.owner INTO owning_sandbox, owning_owner
	FROM nx.deployments dep JOIN nx.sandboxes s ON s.name = dep.sandbox
	WHERE dep.id = deployment;
	-- another user's deployment looks exactly like a missing one: ids are
	-- sequential, and the error must not tell whose sandbox it is in
	IF NOT FOUND OR NOT nx._may_act(owning_owner, nx._caller()) THEN
		RAISE EXCEPTION 'deployment % does not exist', deployment
			USING ERRCODE = 'undefined_object',
				HINT = 'SELECT sandbox, deployment FROM nx.status lists yours.';
	END IF;
	PERFORM nx._sandbox_for_update(owning_sandbox);
	SELECT * INTO d FROM nx.deployments dep WHERE dep.id = deployment FOR UPDATE;
	RETURN d;
END
$$;

-- _require_live raises when a deployment has been removed.
CREATE FUNCTION nx._require_live(d nx.deployments, action text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF d.desired_state = 'removed' THEN
		RAISE EXCEPTION 'cannot % deployment %: it was removed', action, d.id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				DETAIL = format('Deployment %s of sandbox "%s" was removed; its port was released.', d.id, d.sandbox),
				HINT = 'Push the binary again to get a new deployment.';
	END IF;
END
$$;

-- _event appends to nx.events and notifies nx_events, in the caller's
-- transaction (so a rolled-back action leaves no event), and wakes the
-- supervisor when that transaction commits.  The payload holds only the
-- event id: LISTEN is open to every role, so details are read from
-- nx.events, where row-level security applies.
CREATE FUNCTION nx._event(action text, sandbox text, deployment bigint,
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

-- _routes_changed tells routers to reload nx.routes after commit.
-- PostgreSQL folds identical notifications of one transaction into one.
CREATE FUNCTION nx._routes_changed() RETURNS void
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_notify('nx_routes', '') $$;

-- URLs: production http://<sandbox>.<domain>:<port>/, preview
-- http://<slug>.preview.<domain>:<port>/ (no ":80" on port 80).
CREATE FUNCTION nx._production_host(sandbox text) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT sandbox || '.' || nx._setting('nx.domain') $$;

CREATE FUNCTION nx._preview_host(slug text) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT slug || '.preview.' || nx._setting('nx.domain') $$;

CREATE FUNCTION nx._url(host text) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'http://' || host
		|| CASE nx._setting('nx.http_port') WHEN '80' THEN '' ELSE ':' || nx._setting('nx.http_port') END
		|| '/'
$$;
-- 25_views.sql: what users and the router read.  All views are
-- security_invoker, so the row-level security of the tables underneath
-- applies to whoever queries them: a user sees only their own sandboxes.

-- sandbox_info: one row per sandbox, limits in readable units, no secrets.
CREATE VIEW nx.sandbox_info WITH (security_invoker = true) AS
SELECT s.name AS sandbox,
	   s.owner,
	   s.database_name,
	   s.role_name,
	   pg_catalog.pg_size_pretty(s.memory_limit) AS memory_limit,
	   s.pids_limit,
	   s.open_files_limit,
	   s.cpu_weight,
	   pg_catalog.pg_size_pretty(s.tmp_size) AS tmp_size,
	   s.idle_timeout,
	   s.connection_limit,
	   nx._url(nx._production_host(s.name)) AS production_url,
	   (SELECT d.id FROM nx.deployments d
		WHERE d.sandbox OPERATOR(pg_catalog.=) s.name AND d.is_production) AS production_deployment,
	   s.created_by,
	   s.created_at
FROM nx.sandboxes s;
COMMENT ON VIEW nx.sandbox_info IS 'Sandboxes with their limits and production URL (no secrets)';

-- status: one row per deployment that has not been removed, with what the
-- supervisor reports of it (state, pid, restarts, last exit, resources).
CREATE VIEW nx.status WITH (security_invoker = true) AS
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
	   CASE WHEN d.asleep_since IS NOT NULL AND coalesce(r.state, 'stopped') OPERATOR(pg_catalog.=) 'stopped' THEN 'asleep'
			ELSE coalesce(r.state, CASE WHEN d.desired_state OPERATOR(pg_catalog.=) 'running' THEN 'pending' ELSE 'stopped' END)
	   END AS state,
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
	   r.cpu_usec,
	   d.asleep_since
FROM nx.deployments d
JOIN nx.blobs b ON b.sha256 OPERATOR(pg_catalog.=) d.blob
LEFT JOIN nx.runtime r ON r.deployment OPERATOR(pg_catalog.=) d.id
WHERE d.desired_state OPERATOR(pg_catalog.<>) 'removed';
COMMENT ON VIEW nx.status IS 'One row per deployment: port, URLs, desired and actual state (asleep: stopped for being idle, wakes on the next request)';

-- routes: which host reaches which deployment on which port: the
-- production host and custom domains of each sandbox, and the preview host
-- of each deployment.  asleep: stopped for being idle, a request wakes it.
CREATE VIEW nx.routes WITH (security_invoker = true) AS
SELECT nx._production_host(d.sandbox) AS host,
	   'production'::text AS kind,
	   d.sandbox,
	   d.id AS deployment,
	   d.port,
	   d.desired_state,
	   d.asleep_since IS NOT NULL AS asleep
FROM nx.deployments d
WHERE d.is_production
UNION ALL
SELECT nx._preview_host(d.slug),
	   'preview'::text,
	   d.sandbox,
	   d.id,
	   d.port,
	   d.desired_state,
	   d.asleep_since IS NOT NULL
FROM nx.deployments d
WHERE d.desired_state OPERATOR(pg_catalog.<>) 'removed'
UNION ALL
SELECT m.domain,
	   'domain'::text,
	   d.sandbox,
	   d.id,
	   d.port,
	   d.desired_state,
	   d.asleep_since IS NOT NULL
FROM nx.domains m
JOIN nx.deployments d ON d.sandbox OPERATOR(pg_catalog.=) m.sandbox AND d.is_production;
COMMENT ON VIEW nx.routes IS 'Host name to deployment and port, for the router';

-- stat_deployments: each deployment's traffic as the router reports it,
-- and whether it is asleep (scaled to zero).
CREATE VIEW nx.stat_deployments WITH (security_invoker = true) AS
SELECT d.sandbox,
	   d.id AS deployment,
	   d.is_production AS production,
	   d.desired_state,
	   d.asleep_since,
	   coalesce(a.open_connections, 0) AS open_connections,
	   coalesce(a.connections, 0) AS connections,
	   coalesce(a.bytes_in, 0) AS bytes_in,
	   coalesce(a.bytes_out, 0) AS bytes_out,
	   a.last_activity,
	   s.idle_timeout,
	   a.updated_at AS reported_at
FROM nx.deployments d
JOIN nx.sandboxes s ON s.name OPERATOR(pg_catalog.=) d.sandbox
LEFT JOIN nx.activity a ON a.deployment OPERATOR(pg_catalog.=) d.id
WHERE d.desired_state OPERATOR(pg_catalog.<>) 'removed';
COMMENT ON VIEW nx.stat_deployments IS 'Per-deployment traffic from the router: open connections, connections, bytes, last activity';
-- 30_sandboxes.sql: creating and dropping sandboxes, their environment and
-- their database URL.

-- create_sandbox: a new sandbox owned by the caller (or, for nx_admin, by
-- owner).  Limits not given come from the nx.default_* settings.  The
-- database and role are created by the supervisor after commit.
CREATE FUNCTION nx.create_sandbox(
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
	-- the supervisor drops a dropped sandbox's database and role after
	-- commit; until it has, the name is not free: a new sandbox would get
	-- the old database (its rows, maybe another owner's) and a role whose
	-- password is the old sandbox's, so its apps could not log in
	IF EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = 'nx_' || create_sandbox.name)
	   OR EXISTS (SELECT 1 FROM pg_roles r JOIN pg_auth_members m ON m.member = r.oid
				  JOIN pg_roles t ON t.oid = m.roleid AND t.rolname = 'nx_tenant'
				  WHERE r.rolname = 'nx_' || create_sandbox.name) THEN
		RAISE EXCEPTION 'sandbox name "%" is not free yet: the database or role of a dropped sandbox of that name still exists', create_sandbox.name
			USING ERRCODE = 'object_in_use',
				DETAIL = format('Database or role %s has not been removed by the supervisor yet.', quote_ident('nx_' || create_sandbox.name)),
				HINT = 'The supervisor removes them moments after the drop commits: try again.  If this persists, read the server log (lines starting with "nx supervisor").';
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

-- _delete_unused_blobs deletes the binaries no deployment uses.  A
-- concurrent push of the same bytes may be using one right now: it holds
-- the blob's row with FOR KEY SHARE (nx.push), so the blobs are locked
-- first, skipping those, and the delete looks again under the lock, with a
-- newer snapshot that sees the deployments of pushes that committed
-- meanwhile.  (A plain DELETE ... WHERE NOT EXISTS failed with 23503 when
-- such a push committed after its snapshot: t/041_hammer.pl.)
CREATE FUNCTION nx._delete_unused_blobs() RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	unused text[];
BEGIN
	SELECT array_agg(b.sha256) INTO unused FROM (
		SELECT b.sha256 FROM nx.blobs b
		WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.blob = b.sha256)
		FOR UPDATE SKIP LOCKED) b;
	DELETE FROM nx.blobs b
	WHERE b.sha256 = ANY (unused)
	  AND NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.blob = b.sha256);
END
$$;

-- drop_sandbox: remove a sandbox and everything it holds.  Its database and
-- role are dropped by the supervisor after commit, unless keep_database,
-- in which case they are recorded in nx.kept_databases and left alone.
-- Binaries no other deployment uses are deleted.
CREATE FUNCTION nx.drop_sandbox(name text, keep_database boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(drop_sandbox.name);
	n_deployments bigint;
BEGIN
	SELECT count(*) INTO n_deployments FROM nx.deployments d WHERE d.sandbox = s.name;
	DELETE FROM nx.env e WHERE e.sandbox = s.name;
	DELETE FROM nx.domains m WHERE m.sandbox = s.name;
	DELETE FROM nx.promotions p WHERE p.sandbox = s.name;
	DELETE FROM nx.deployments d WHERE d.sandbox = s.name;
	DELETE FROM nx.sandboxes x WHERE x.name = s.name;
	PERFORM nx._delete_unused_blobs();
	IF coalesce(keep_database, false) THEN
		INSERT INTO nx.kept_databases (database_name, role_name, sandbox, owner, kept_by)
		VALUES (s.database_name, s.role_name, s.name, s.owner, nx._caller());
	END IF;
	PERFORM nx._event('drop_sandbox', s.name, NULL, s.owner,
		jsonb_build_object('keep_database', coalesce(keep_database, false),
						   'deployments', n_deployments));
	PERFORM nx._routes_changed();
END
$$;

-- drop_kept_database: forget a database kept by drop_sandbox, so that the
-- supervisor drops it (and its role) and the name becomes free again.
CREATE FUNCTION nx.drop_kept_database(sandbox text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k nx.kept_databases;
BEGIN
	IF drop_kept_database.sandbox IS NULL THEN
		RAISE EXCEPTION 'sandbox name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO k FROM nx.kept_databases x WHERE x.sandbox = drop_kept_database.sandbox FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'no kept database for sandbox "%"', left(drop_kept_database.sandbox, 60)
			USING ERRCODE = 'undefined_object';
	END IF;
	IF NOT nx._may_act(k.owner, nx._caller()) THEN
		RAISE EXCEPTION 'permission denied for the kept database of sandbox "%"', k.sandbox
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	DELETE FROM nx.kept_databases x WHERE x.database_name = k.database_name;
	PERFORM nx._event('drop_kept_database', k.sandbox, NULL, k.owner,
		jsonb_build_object('database', k.database_name));
END
$$;

-- _check_env_name raises when name cannot be a sandbox environment variable:
-- not a POSIX name, or one the platform sets itself.
CREATE FUNCTION nx._check_env_name(name text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF name IS NULL OR name !~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$' THEN
		RAISE EXCEPTION 'invalid environment variable name %', coalesce(quote_literal(left(name, 60)), 'NULL')
			USING ERRCODE = 'invalid_name',
				DETAIL = 'A name is 1 to 128 letters, digits and underscores, not starting with a digit.';
	END IF;
	IF upper(name) IN ('PORT', 'DATABASE_URL') OR upper(name) LIKE 'PG%' OR upper(name) LIKE 'NX\_%' THEN
		RAISE EXCEPTION 'environment variable name "%" is reserved', name
			USING ERRCODE = 'reserved_name',
				DETAIL = 'The platform sets PORT, DATABASE_URL, PG* and NX_* itself.';
	END IF;
END
$$;

-- _check_env_value raises when a value is too large to pass to a process.
CREATE FUNCTION nx._check_env_value(name text, value text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF value IS NULL THEN
		RAISE EXCEPTION 'value of environment variable "%" must not be null', name
			USING ERRCODE = 'null_value_not_allowed', HINT = 'Use nx.unset_env() to remove a variable.';
	ELSIF octet_length(value) > 32768 THEN
		RAISE EXCEPTION 'value of environment variable "%" is too long (% bytes, at most 32768)', name, octet_length(value)
			USING ERRCODE = 'program_limit_exceeded';
	END IF;
END
$$;

-- set_env: set (or replace) a variable given to every deployment of the
-- sandbox from its next start.
CREATE FUNCTION nx.set_env(sandbox text, name text, value text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(set_env.sandbox);
	replaced boolean;
BEGIN
	PERFORM nx._check_env_name(set_env.name);
	PERFORM nx._check_env_value(set_env.name, set_env.value);
	replaced := EXISTS (SELECT 1 FROM nx.env e WHERE e.sandbox = s.name AND e.name = set_env.name);
	IF NOT replaced AND (SELECT count(*) FROM nx.env e WHERE e.sandbox = s.name) >= 256 THEN
		RAISE EXCEPTION 'sandbox "%" already has 256 environment variables', s.name
			USING ERRCODE = 'program_limit_exceeded';
	END IF;
	INSERT INTO nx.env (sandbox, name, value, updated_by)
	VALUES (s.name, set_env.name, set_env.value, nx._caller())
	ON CONFLICT ON CONSTRAINT env_pkey
	DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = now();
	-- the value is a secret: the event records only the name
	PERFORM nx._event('set_env', s.name, NULL, s.owner,
		jsonb_build_object('name', set_env.name, 'replaced', replaced));
END
$$;

-- unset_env: remove a variable; returns whether it was set.
CREATE FUNCTION nx.unset_env(sandbox text, name text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(unset_env.sandbox);
BEGIN
	PERFORM nx._check_env_name(unset_env.name);
	DELETE FROM nx.env e WHERE e.sandbox = s.name AND e.name = unset_env.name;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM nx._event('unset_env', s.name, NULL, s.owner, jsonb_build_object('name', unset_env.name));
	RETURN true;
END
$$;

-- database_url: how an app (or its owner, on this host) reaches the
-- sandbox's database: the cluster's first unix socket directory and port,
-- the sandbox role and its password.
CREATE FUNCTION nx.database_url(sandbox text) RETURNS text
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
-- 40_deployments.sql: checking binaries, pushing them, and the lifecycle
-- of a deployment (start, stop, restart, remove).

-- What nx.verify_binary reports about a file (src/api/verify.c).
CREATE TYPE nx.binary_report AS (
	ok					boolean,	-- no problems: it can run here
	problems			text[],		-- why not, one sentence each
	hint				text,		-- how to build one that runs
	elf_class			text,		-- ELF64 / ELF32, NULL when not ELF
	machine				text,		-- x86-64, AArch64...
	file_type			text,		-- executable, PIE executable, shared object...
	pie					boolean,
	linkage				text,		-- static / dynamic
	interpreter			text,		-- PT_INTERP path of a dynamic binary
	interpreter_found	boolean,	-- does it exist on this host
	needed				text[],		-- DT_NEEDED libraries
	missing_libraries	text[],		-- those not found on this host
	size				bigint,
	sha256				text
);

CREATE FUNCTION nx.verify_binary(binary bytea) RETURNS nx.binary_report
	AS 'MODULE_PATHNAME', 'nx_verify_binary' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION nx.verify_binary(bytea) IS 'Can this file run as an app here? Never raises an error for bad bytes';

CREATE FUNCTION nx._require_runnable(binary bytea) RETURNS nx.binary_report
	AS 'MODULE_PATHNAME', 'nx_require_runnable' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- _allocate_port returns the lowest port of nx.port_range that no
-- deployment holds.  The advisory lock, held to the end of the transaction,
-- makes concurrent pushes take turns; the UNIQUE constraint on
-- deployments.port backs it up.
CREATE FUNCTION nx._allocate_port() RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	port_range text := nx._setting('nx.port_range');
	first_port integer := split_part(port_range, '-', 1)::integer;
	last_port integer := split_part(port_range, '-', 2)::integer;
	free_port integer;
BEGIN
	PERFORM pg_advisory_xact_lock(28280, 1);
	SELECT g INTO free_port
	FROM generate_series(first_port, last_port) g
	WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.port = g)
	ORDER BY g LIMIT 1;
	IF free_port IS NULL THEN
		RAISE EXCEPTION 'no free port left in nx.port_range (%)', port_range
			USING ERRCODE = 'configuration_limit_exceeded',
				DETAIL = format('All %s ports are held by deployments that have not been removed.', last_port - first_port + 1),
				HINT = 'Remove unused deployments with nx.remove(), or widen nx.port_range.';
	END IF;
	RETURN free_port;
END
$$;

-- _new_slug returns a preview slug no deployment has: 16 characters of
-- base32 from the CSPRNG (80 bits), so preview URLs cannot be guessed.
CREATE FUNCTION nx._new_slug() RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	candidate text;
BEGIN
	LOOP
		candidate := nx._random_token(16);
		EXIT WHEN NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.slug = candidate);
	END LOOP;
	RETURN candidate;
END
$$;

-- _check_push_options raises on a bad label, argument list or env override.
CREATE FUNCTION nx._check_push_options(label text, args text[], env jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k text;
	v jsonb;
BEGIN
	IF label IS NOT NULL AND label !~ '^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$' THEN
		RAISE EXCEPTION 'invalid label %', quote_literal(left(label, 80))
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'A label is 1 to 64 letters, digits, dots, underscores, plus and minus signs, starting with a letter or digit.',
				HINT = 'For example ''v1.2.4'' or a git commit hash.';
	END IF;
	IF args IS NULL OR array_ndims(args) > 1 OR array_position(args, NULL) IS NOT NULL THEN
		RAISE EXCEPTION 'args must be a one-dimensional text array without nulls'
			USING ERRCODE = 'invalid_parameter_value', HINT = 'For example ARRAY[''--verbose''].';
	END IF;
	IF cardinality(args) > 256 OR octet_length(array_to_string(args, ' ')) > 65536 THEN
		RAISE EXCEPTION 'args are too long (% arguments, % bytes; at most 256 and 65536)',
			cardinality(args), octet_length(array_to_string(args, ' '))
			USING ERRCODE = 'program_limit_exceeded';
	END IF;
	IF env IS NULL OR jsonb_typeof(env) <> 'object' THEN
		RAISE EXCEPTION 'env must be a JSON object of strings'
			USING ERRCODE = 'invalid_parameter_value', HINT = 'For example ''{"LOG_LEVEL": "debug"}''.';
	END IF;
	IF (SELECT count(*) FROM jsonb_object_keys(env)) > 256 THEN
		RAISE EXCEPTION 'env has too many variables (at most 256)' USING ERRCODE = 'program_limit_exceeded';
	END IF;
	FOR k, v IN SELECT * FROM jsonb_each(env) LOOP
		PERFORM nx._check_env_name(k);
		IF jsonb_typeof(v) <> 'string' THEN
			RAISE EXCEPTION 'value of environment variable "%" must be a string, not %', k, jsonb_typeof(v)
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		PERFORM nx._check_env_value(k, v #>> '{}');
	END LOOP;
END
$$;

-- push: store a binary (once per content) and create a deployment of it in
-- the sandbox, with its own port and preview URL, desired state running.
-- Refuses, before storing anything, what nx.verify_binary says cannot run.
CREATE FUNCTION nx.push(sandbox text, binary bytea, label text DEFAULT NULL,
						args text[] DEFAULT '{}', env jsonb DEFAULT '{}')
RETURNS nx.status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(push.sandbox);
	report nx.binary_report;
	live_deployments bigint;
	max_deployments integer := nx._setting('nx.max_deployments_per_sandbox')::integer;
	new_id bigint;
BEGIN
	IF push.binary IS NULL THEN
		RAISE EXCEPTION 'binary must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM nx._check_push_options(push.label, push.args, push.env);
	SELECT count(*) INTO live_deployments FROM nx.deployments d
	WHERE d.sandbox = s.name AND d.desired_state <> 'removed';
	IF live_deployments >= max_deployments THEN
		RAISE EXCEPTION 'sandbox "%" already has % deployments', s.name, live_deployments
			USING ERRCODE = 'configuration_limit_exceeded',
				HINT = 'Remove old ones with nx.remove(deployment), or raise nx.max_deployments_per_sandbox.';
	END IF;

	report := nx._require_runnable(push.binary);
	-- a full disk can take the whole cluster down: refuse a new blob that
	-- does not fit with room to spare before writing any of it
	IF NOT EXISTS (SELECT 1 FROM nx.blobs b WHERE b.sha256 = report.sha256) THEN
		PERFORM nx._check_disk_space(report.size);
	END IF;
	-- store the blob, or hold the stored one with FOR KEY SHARE so that a
	-- concurrent drop_sandbox cannot delete it before this deployment
	-- references it (nx._delete_unused_blobs); if one deleted it after the
	-- conflict check, store it again
	LOOP
		INSERT INTO nx.blobs (sha256, size, bytes, machine, linkage, interpreter)
		VALUES (report.sha256, report.size, push.binary, report.machine, report.linkage, report.interpreter)
		ON CONFLICT (sha256) DO NOTHING;
		EXIT WHEN FOUND;
		PERFORM 1 FROM nx.blobs b WHERE b.sha256 = report.sha256 FOR KEY SHARE;
		EXIT WHEN FOUND;
	END LOOP;

	BEGIN
		INSERT INTO nx.deployments (sandbox, blob, label, args, env, port, slug, created_by)
		VALUES (s.name, report.sha256, push.label, push.args, push.env,
				nx._allocate_port(), nx._new_slug(), nx._caller())
		RETURNING id INTO new_id;
	EXCEPTION WHEN unique_violation THEN
		-- only possible when this transaction's snapshot predates a
		-- concurrent push that took the same port (REPEATABLE READ or
		-- SERIALIZABLE): a retry will see it
		RAISE EXCEPTION 'could not allocate a port: a concurrent push took it'
			USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
	END;

	PERFORM nx._event('push', s.name, new_id, s.owner,
		jsonb_build_object('sha256', report.sha256, 'size', report.size,
						   'label', push.label, 'linkage', report.linkage));
	PERFORM nx._routes_changed();
	RETURN (SELECT st FROM nx.status st WHERE st.deployment = new_id);
END
$$;

-- _set_desired_state moves a deployment to running or stopped, with an
-- event.  A new restart generation makes the supervisor start it afresh:
-- always for restart, and for start when it is not starting or ready
-- (so that start also retries a failed or crashlooping deployment).
CREATE FUNCTION nx._set_desired_state(deployment bigint, action text, new_state text,
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
		asleep_since = NULL,
		restart_generation = x.restart_generation + CASE WHEN bump_generation THEN 1 ELSE 0 END
	WHERE x.id = d.id;
	PERFORM nx._event(action, d.sandbox, d.id, owner,
		jsonb_build_object('from', d.desired_state, 'to', new_state));
	PERFORM nx._routes_changed();
	RETURN (SELECT st FROM nx.status st WHERE st.deployment = d.id);
END
$$;

CREATE FUNCTION nx.start(deployment bigint) RETURNS nx.status
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nx._set_desired_state(deployment, 'start', 'running', false) $$;
COMMENT ON FUNCTION nx.start(bigint) IS 'Desired state running: the supervisor starts it';

CREATE FUNCTION nx.stop(deployment bigint) RETURNS nx.status
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nx._set_desired_state(deployment, 'stop', 'stopped', false) $$;
COMMENT ON FUNCTION nx.stop(bigint) IS 'Desired state stopped: the supervisor stops it (SIGTERM, grace, SIGKILL)';

CREATE FUNCTION nx.restart(deployment bigint) RETURNS nx.status
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nx._set_desired_state(deployment, 'restart', 'running', true) $$;
COMMENT ON FUNCTION nx.restart(bigint) IS 'Restart (or start) a deployment';

-- remove: retire a deployment for good.  Its port is released, its row stays
-- as history.  The production deployment cannot be removed.
CREATE FUNCTION nx.remove(deployment bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d nx.deployments := nx._deployment_for_update(deployment);
	owner name := (SELECT s.owner FROM nx.sandboxes s WHERE s.name = d.sandbox);
BEGIN
	PERFORM nx._require_live(d, 'remove');
	IF d.is_production THEN
		RAISE EXCEPTION 'cannot remove deployment %: it is the production deployment of sandbox "%"', d.id, d.sandbox
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = 'Promote another deployment first (nx.promote or nx.rollback), or drop the sandbox.';
	END IF;
	UPDATE nx.deployments x
	SET desired_state = 'removed', port = NULL, removed_at = now(), asleep_since = NULL
	WHERE x.id = d.id;
	PERFORM nx._event('remove', d.sandbox, d.id, owner,
		jsonb_build_object('port', d.port, 'from', d.desired_state));
	PERFORM nx._routes_changed();
END
$$;
-- 50_promotions.sql: which deployment serves the production URL.
-- Promoting is one row update (is_production) plus a history row; the router
-- picks up the new route when the transaction commits.

-- _make_production moves the production flag of a sandbox to target and
-- records the promotion; returns the deployment that was production.
CREATE FUNCTION nx._make_production(s nx.sandboxes, target bigint, kind text,
									reverts bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	previous bigint;
BEGIN
	SELECT d.id INTO previous FROM nx.deployments d
	WHERE d.sandbox = s.name AND d.is_production FOR UPDATE;
	UPDATE nx.deployments d SET is_production = false WHERE d.sandbox = s.name AND d.is_production;
	UPDATE nx.deployments d SET is_production = true WHERE d.id = target;
	INSERT INTO nx.promotions (sandbox, deployment, previous, kind, reverts, promoted_by)
	VALUES (s.name, target, previous, kind, reverts, nx._caller());
	PERFORM nx._event(kind, s.name, target, s.owner,
		jsonb_build_object('previous', previous));
	PERFORM nx._routes_changed();
	RETURN previous;
END
$$;

-- _require_ready raises unless a deployment can serve production traffic
-- now: the supervisor reports it ready, or it is asleep (it was ready, and
-- the first request wakes it).  force skips the check.
CREATE FUNCTION nx._require_ready(d nx.deployments, action text, force boolean) RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	actual text;
BEGIN
	IF coalesce(force, false) OR d.asleep_since IS NOT NULL THEN
		RETURN;
	END IF;
	IF d.desired_state <> 'running' THEN
		RAISE EXCEPTION 'cannot % deployment %: it is stopped', action, d.id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = format('Start it with nx.start(%s) and wait until nx.status shows it ready, or pass force => true.', d.id);
	END IF;
	SELECT r.state INTO actual FROM nx.runtime r WHERE r.deployment = d.id;
	IF actual IS DISTINCT FROM 'ready' THEN
		RAISE EXCEPTION 'cannot % deployment %: it is not ready (state: %)', action, d.id, coalesce(actual, 'pending')
			USING ERRCODE = 'object_not_in_prerequisite_state',
				DETAIL = 'Production only moves to a deployment that accepts connections, so that no request fails.',
				HINT = format('Wait until nx.status shows deployment %s ready (nx push waits for that); if it does not get there, see nx.logs(%L, %s).  force => true promotes it anyway.',
							  d.id, d.sandbox, d.id);
	END IF;
END
$$;

-- promote: make a deployment (by default the newest one) the production
-- deployment of its sandbox.  Only a ready (or asleep) deployment is
-- promoted unless force is true.
CREATE FUNCTION nx.promote(sandbox text, deployment bigint DEFAULT NULL, force boolean DEFAULT false) RETURNS nx.status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(promote.sandbox);
	d nx.deployments;
BEGIN
	IF promote.deployment IS NULL THEN
		SELECT * INTO d FROM nx.deployments x
		WHERE x.sandbox = s.name AND x.desired_state <> 'removed'
		ORDER BY x.id DESC LIMIT 1 FOR UPDATE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'sandbox "%" has no deployment to promote', s.name
				USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Push a binary first with nx.push().';
		END IF;
	ELSE
		SELECT * INTO d FROM nx.deployments x WHERE x.id = promote.deployment FOR UPDATE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'deployment % does not exist', promote.deployment
				USING ERRCODE = 'undefined_object',
					HINT = format('SELECT deployment FROM nx.status WHERE sandbox = %L lists the deployments of this sandbox.', s.name);
		END IF;
		IF d.sandbox <> s.name THEN
			-- do not say which sandbox it belongs to: it may be another user's
			RAISE EXCEPTION 'deployment % is not a deployment of sandbox "%"', d.id, s.name
				USING ERRCODE = 'invalid_parameter_value',
					HINT = format('SELECT deployment FROM nx.status WHERE sandbox = %L lists the deployments of this sandbox.', s.name);
		END IF;
		PERFORM nx._require_live(d, 'promote');
	END IF;

	IF d.is_production THEN
		-- nothing changes; the call is still recorded
		PERFORM nx._event('promote', s.name, d.id, s.owner,
			jsonb_build_object('previous', d.id, 'unchanged', true));
	ELSE
		PERFORM nx._require_ready(d, 'promote', force);
		PERFORM nx._make_production(s, d.id, 'promote', NULL);
	END IF;
	RETURN (SELECT st FROM nx.status st WHERE st.deployment = d.id);
END
$$;

-- rollback: undo the most recent promotion that has not been undone yet,
-- making the deployment that was production before it production again.
-- Repeated rollbacks walk further back through the history.  Like
-- promote, it only moves production to a ready (or asleep) deployment
-- unless force is true.
CREATE FUNCTION nx.rollback(sandbox text, force boolean DEFAULT false) RETURNS nx.status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(rollback.sandbox);
	last_promotion nx.promotions;
	target nx.deployments;
BEGIN
	SELECT * INTO last_promotion FROM nx.promotions p
	WHERE p.sandbox = s.name AND p.kind = 'promote'
	  AND NOT EXISTS (SELECT 1 FROM nx.promotions r WHERE r.reverts = p.id)
	ORDER BY p.id DESC LIMIT 1;
	IF NOT FOUND OR last_promotion.previous IS NULL THEN
		RAISE EXCEPTION 'sandbox "%" has no earlier production deployment to roll back to', s.name
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = 'Promote a deployment explicitly with nx.promote(sandbox, deployment).';
	END IF;
	SELECT * INTO target FROM nx.deployments d WHERE d.id = last_promotion.previous FOR UPDATE;
	IF target.desired_state = 'removed' THEN
		RAISE EXCEPTION 'cannot roll back sandbox "%": the previous production deployment % was removed', s.name, target.id
			USING ERRCODE = 'object_not_in_prerequisite_state',
				HINT = 'Promote a deployment explicitly with nx.promote(sandbox, deployment).';
	END IF;
	PERFORM nx._require_ready(target, 'roll back to', force);
	PERFORM nx._make_production(s, target.id, 'rollback', last_promotion.id);
	RETURN (SELECT st FROM nx.status st WHERE st.deployment = target.id);
END
$$;
-- 55_scale_to_zero.sql: idle stop and wake on request.
--
-- The router reports each deployment's traffic every second
-- (report_activity, into the unlogged nx.activity).  The supervisor stops a
-- deployment that has had no connection open for its sandbox's
-- idle_timeout (_idle_deployments, then _mark_asleep once the deployment's
-- nx-init agrees that no connection was handed out recently); the row keeps
-- desired_state 'running' with asleep_since set.  The next request for it
-- makes the router call wake, which clears asleep_since; the supervisor,
-- woken at commit, starts it, and the router hands the held request over
-- as soon as it is ready.

-- _idle_deployments: ready deployments whose sandbox's idle_timeout has
-- passed since their last activity (or since they became ready), with no
-- connection open.  Only while the router's reports are fresh: without a
-- router nothing could wake them again, and a stale report could miss a
-- connection.
CREATE FUNCTION nx._idle_deployments() RETURNS SETOF bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT d.id
	FROM nx.deployments d
	JOIN nx.sandboxes s ON s.name = d.sandbox
	JOIN nx.runtime r ON r.deployment = d.id AND r.state = 'ready'
	LEFT JOIN nx.activity a ON a.deployment = d.id
	WHERE d.desired_state = 'running' AND d.asleep_since IS NULL
	  AND s.idle_timeout > interval '0'
	  AND coalesce(a.open_connections, 0) = 0
	  AND greatest(a.last_activity, r.ready_at) < now() - s.idle_timeout
	  AND EXISTS (SELECT 1 FROM nx.router_heartbeat h WHERE h.reported_at > now() - interval '3 seconds')
	ORDER BY d.id
$$;

-- _mark_asleep records that the supervisor stops a deployment for being
-- idle (event idle_stop).  Returns false when the row changed meanwhile
-- (stopped, removed, or already asleep): then nothing is done.
CREATE FUNCTION nx._mark_asleep(deployment bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d nx.deployments;
	s nx.sandboxes;
	last timestamptz;
	event_id bigint;
BEGIN
	UPDATE nx.deployments x SET asleep_since = now()
	WHERE x.id = _mark_asleep.deployment AND x.desired_state = 'running' AND x.asleep_since IS NULL
	RETURNING * INTO d;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	SELECT * INTO s FROM nx.sandboxes x WHERE x.name = d.sandbox;
	SELECT a.last_activity INTO last FROM nx.activity a WHERE a.deployment = d.id;
	INSERT INTO nx.events (actor, owner, action, sandbox, deployment, details)
	VALUES ('supervisor', s.owner, 'idle_stop', d.sandbox, d.id,
			jsonb_build_object('idle_timeout', s.idle_timeout::text, 'last_activity', last))
	RETURNING id INTO event_id;
	PERFORM pg_notify('nx_events', json_build_object('id', event_id)::text);
	PERFORM nx._routes_changed();
	RETURN true;
END
$$;

-- wake: make an asleep deployment run again (the router calls it for the
-- first request that arrives for one; its owner may too).  Returns whether
-- it was asleep.  The router, which serves every sandbox, may wake any
-- deployment; anyone else only their own.
CREATE FUNCTION nx.wake(deployment bigint) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d nx.deployments;
	owner name;
BEGIN
	IF wake.deployment IS NULL THEN
		RAISE EXCEPTION 'deployment id must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF pg_has_role(nx._caller(), 'nx_router', 'MEMBER') THEN
		SELECT * INTO d FROM nx.deployments x WHERE x.id = wake.deployment FOR UPDATE;
		IF NOT FOUND THEN
			RETURN false;
		END IF;
	ELSE
		d := nx._deployment_for_update(wake.deployment);
	END IF;
	IF d.asleep_since IS NULL THEN
		RETURN false;
	END IF;
	UPDATE nx.deployments x SET asleep_since = NULL WHERE x.id = d.id;
	-- the wake is activity: the idle timeout starts again from now
	INSERT INTO nx.activity AS a (deployment, last_activity) VALUES (d.id, now())
	ON CONFLICT ON CONSTRAINT activity_pkey DO UPDATE
		SET last_activity = greatest(a.last_activity, excluded.last_activity), updated_at = now();
	SELECT s.owner INTO owner FROM nx.sandboxes s WHERE s.name = d.sandbox;
	PERFORM nx._event('wake', d.sandbox, d.id, owner,
		jsonb_build_object('asleep_since', d.asleep_since));
	PERFORM nx._routes_changed();
	RETURN true;
END
$$;
COMMENT ON FUNCTION nx.wake(bigint) IS 'Start an asleep (idle-stopped) deployment again; the router calls it on the first request';

-- report_activity: the router's traffic report.  Arrays of equal length,
-- one element per deployment: open connections now, and since the last
-- report the connections routed, bytes from clients (in) and to clients
-- (out); idle_ms is how long ago the last byte moved (NULL: never).  A full
-- report lists every deployment with open connections, so any other
-- deployment has none (the router sends one after each reconnect).
CREATE FUNCTION nx.report_activity(full_report boolean, deployments bigint[],
								   open_connections integer[], connections bigint[],
								   bytes_in bigint[], bytes_out bigint[], idle_ms bigint[])
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n integer := coalesce(cardinality(deployments), 0);
BEGIN
	IF NOT pg_has_role(nx._caller(), 'nx_router', 'MEMBER') THEN
		RAISE EXCEPTION 'permission denied to report activity'
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = 'Only the router (role nx_router) reports traffic.';
	END IF;
	IF coalesce(cardinality(open_connections), 0) <> n OR coalesce(cardinality(connections), 0) <> n
		OR coalesce(cardinality(bytes_in), 0) <> n OR coalesce(cardinality(bytes_out), 0) <> n
		OR coalesce(cardinality(idle_ms), 0) <> n THEN
		RAISE EXCEPTION 'activity arrays must all have the same length'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO nx.router_heartbeat AS h (id, reported_at, reporter) VALUES (true, now(), nx._caller())
	ON CONFLICT ON CONSTRAINT router_heartbeat_pkey DO UPDATE
		SET reported_at = excluded.reported_at, reporter = excluded.reporter;
	IF coalesce(full_report, false) THEN
		UPDATE nx.activity a SET open_connections = 0, updated_at = now()
		WHERE a.open_connections <> 0 AND a.deployment <> ALL (coalesce(deployments, '{}'));
		DELETE FROM nx.activity a
		WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d
						  WHERE d.id = a.deployment AND d.desired_state <> 'removed');
	END IF;
	IF n = 0 THEN
		RETURN;
	END IF;
	INSERT INTO nx.activity AS a (deployment, open_connections, connections, bytes_in, bytes_out,
								  last_activity, updated_at)
	SELECT u.id, greatest(coalesce(u.open, 0), 0), greatest(coalesce(u.conns, 0), 0),
		   greatest(coalesce(u.bin, 0), 0), greatest(coalesce(u.bout, 0), 0),
		   CASE WHEN u.idle IS NOT NULL THEN now() - greatest(u.idle, 0) * interval '1 millisecond' END, now()
	FROM unnest(deployments, open_connections, connections, bytes_in, bytes_out, idle_ms)
		 AS u(id, open, conns, bin, bout, idle)
	WHERE u.id IS NOT NULL
	  AND EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id = u.id AND d.desired_state <> 'removed')
	ON CONFLICT ON CONSTRAINT activity_pkey DO UPDATE
		SET open_connections = excluded.open_connections,
			connections = a.connections + excluded.connections,
			bytes_in = a.bytes_in + excluded.bytes_in,
			bytes_out = a.bytes_out + excluded.bytes_out,
			last_activity = greatest(a.last_activity, excluded.last_activity),
			updated_at = excluded.updated_at;
END
$$;
COMMENT ON FUNCTION nx.report_activity(boolean, bigint[], integer[], bigint[], bigint[], bigint[], bigint[])
	IS 'The router''s per-deployment traffic report (role nx_router only)';
-- 57_domains.sql: custom domains, and the list of every host the router
-- serves (for a TLS proxy in front that issues certificates on demand).

-- _normalise_domain returns a domain in the form nx.domains keeps (lower
-- case, no trailing dot), or raises with what is wrong with it.
CREATE FUNCTION nx._normalise_domain(domain text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	host text := lower(rtrim(btrim(domain), '.'));
	base text := lower(rtrim(nx._setting('nx.domain'), '.'));
BEGIN
	IF domain IS NULL THEN
		RAISE EXCEPTION 'domain must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF length(host) > 253
		OR host !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' THEN
		RAISE EXCEPTION 'invalid domain "%"', left(domain, 80)
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'A domain is two or more labels separated by dots; each label is 1-63 letters, digits or hyphens, not starting or ending with a hyphen; 253 characters at most.',
				HINT = 'Give the bare host name, such as ''app.example.com'': no scheme, port or path.';
	END IF;
	IF host = base OR right(host, length(base) + 1) = '.' || base THEN
		RAISE EXCEPTION 'domain "%" is under nx.domain (%)', host, base
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'Host names under nx.domain are the platform''s own production and preview hosts.',
				HINT = 'Every sandbox already has <sandbox>.' || base || ': see production_url in nx.sandbox_info.';
	END IF;
	RETURN host;
END
$$;

-- add_domain: route a domain to the sandbox's production deployment.
-- Adding a domain the sandbox already has changes nothing.
CREATE FUNCTION nx.add_domain(sandbox text, domain text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(add_domain.sandbox);
	host text := nx._normalise_domain(add_domain.domain);
	holder text;
BEGIN
	SELECT m.sandbox INTO holder FROM nx.domains m WHERE m.domain = host;
	IF holder = s.name THEN
		RETURN host;
	ELSIF holder IS NOT NULL THEN
		RAISE EXCEPTION 'domain "%" is already in use', host
			USING ERRCODE = 'unique_violation',
				HINT = 'A domain routes to one sandbox: remove it from the other one first (nx.remove_domain).';
	END IF;
	INSERT INTO nx.domains (domain, sandbox, created_by) VALUES (host, s.name, nx._caller());
	PERFORM nx._event('add_domain', s.name, NULL, s.owner, jsonb_build_object('domain', host));
	PERFORM nx._routes_changed();
	RETURN host;
END
$$;
COMMENT ON FUNCTION nx.add_domain(text, text) IS 'Route a custom domain to a sandbox''s production deployment';

-- remove_domain: stop routing a custom domain.  Another user's domain reads
-- as one that does not exist.
CREATE FUNCTION nx.remove_domain(domain text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	host text := lower(rtrim(btrim(remove_domain.domain), '.'));
	m nx.domains;
	s nx.sandboxes;
BEGIN
	IF remove_domain.domain IS NULL THEN
		RAISE EXCEPTION 'domain must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO m FROM nx.domains x WHERE x.domain = host;
	IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM nx.sandboxes x
								WHERE x.name = m.sandbox AND nx._may_act(x.owner, nx._caller())) THEN
		RAISE EXCEPTION 'domain "%" does not exist', left(host, 80)
			USING ERRCODE = 'undefined_object',
				HINT = 'SELECT domain, sandbox FROM nx.domains lists yours.';
	END IF;
	s := nx._sandbox_for_update(m.sandbox);
	DELETE FROM nx.domains x WHERE x.domain = host;
	PERFORM nx._event('remove_domain', s.name, NULL, s.owner, jsonb_build_object('domain', host));
	PERFORM nx._routes_changed();
END
$$;
COMMENT ON FUNCTION nx.remove_domain(text) IS 'Stop routing a custom domain';

-- route_hosts: every host name the router serves, for a TLS proxy in front
-- that gets certificates only for known names (Caddy's on-demand TLS asks
-- the router's /.nx/ask endpoint, which answers from the same list).
CREATE FUNCTION nx.route_hosts() RETURNS TABLE (host text, kind text, sandbox text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.host, r.kind, r.sandbox FROM nx.routes r ORDER BY r.host $$;
COMMENT ON FUNCTION nx.route_hosts() IS 'Every host the router serves (for TLS certificate allow-lists); nx_admin and nx_router';
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
-- desired_state is 'asleep' for a deployment stopped for being idle: the
-- router wakes it (nx.wake) and holds the request until it is ready.
CREATE FUNCTION nx.router_routes() RETURNS TABLE (host text, deployment bigint, desired_state text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.host, r.deployment, CASE WHEN r.asleep THEN 'asleep' ELSE r.desired_state END FROM nx.routes r $$;
-- 90_security.sql: who may read and call what, and what pg_dump carries.
--
-- PUBLIC gets nothing.  Members of nx_user may call the API functions and
-- read the tables and views; row-level security shows them only the rows
-- of sandboxes they may act on (nx._may_act).  Nobody but the extension
-- owner may write the tables: every change goes through a function that
-- checks ownership first.  Tenant roles (nx_tenant) get nothing here.

ALTER TABLE nx.sandboxes ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.blobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.deployments ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.promotions ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.env ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.kept_databases ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.events ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.runtime ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.router_heartbeat ENABLE ROW LEVEL SECURITY;

-- Policies run as the querying role, and the tables they consult have
-- their own policies, so each step narrows to the caller's sandboxes.
CREATE POLICY sandboxes_visible ON nx.sandboxes FOR SELECT TO nx_user
	USING (nx._may_act(owner, current_user));
CREATE POLICY deployments_visible ON nx.deployments FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY blobs_visible ON nx.blobs FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.blob OPERATOR(pg_catalog.=) sha256));
CREATE POLICY promotions_visible ON nx.promotions FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY env_visible ON nx.env FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY kept_databases_visible ON nx.kept_databases FOR SELECT TO nx_user
	USING (nx._may_act(owner, current_user));
CREATE POLICY events_visible ON nx.events FOR SELECT TO nx_user
	USING (nx._may_act(owner, current_user));
CREATE POLICY runtime_visible ON nx.runtime FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id OPERATOR(pg_catalog.=) deployment));
CREATE POLICY domains_visible ON nx.domains FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY activity_visible ON nx.activity FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id OPERATOR(pg_catalog.=) deployment));

REVOKE ALL ON ALL TABLES IN SCHEMA nx FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA nx FROM PUBLIC;
GRANT SELECT ON nx.sandboxes, nx.blobs, nx.deployments, nx.promotions, nx.env,
	nx.kept_databases, nx.events, nx.runtime, nx.sandbox_info, nx.status, nx.routes,
	nx.domains, nx.activity, nx.stat_deployments TO nx_user;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA nx FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
	nx.create_sandbox(text, text, integer, integer, integer, text, interval, integer, name),
	nx.drop_sandbox(text, boolean),
	nx.drop_kept_database(text),
	nx.set_env(text, text, text),
	nx.unset_env(text, text),
	nx.database_url(text),
	nx.verify_binary(bytea),
	nx.push(text, bytea, text, text[], jsonb),
	nx.start(bigint),
	nx.stop(bigint),
	nx.restart(bigint),
	nx.remove(bigint),
	nx.promote(text, bigint, boolean),
	nx.rollback(text, boolean),
	nx.logs(text, bigint, integer),
	nx.wake(bigint),
	nx.add_domain(text, text),
	nx.remove_domain(text)
TO nx_user;
GRANT EXECUTE ON FUNCTION nx.check_setup(), nx.route_hosts() TO nx_admin;
-- the router sees hosts and deployment ids, wakes asleep deployments and
-- reports traffic; nothing else
GRANT USAGE ON SCHEMA nx TO nx_router;
GRANT EXECUTE ON FUNCTION
	nx.router_routes(),
	nx.route_hosts(),
	nx.wake(bigint),
	nx.report_activity(boolean, bigint[], integer[], bigint[], bigint[], bigint[], bigint[])
TO nx_router;
-- used by the views and policies above, which run as the querying role
GRANT EXECUTE ON FUNCTION
	nx._may_act(name, name),
	nx._setting(text),
	nx._url(text),
	nx._production_host(text),
	nx._preview_host(text),
	nx._supervisor_pid()
TO nx_user;

-- pg_dump of this database is the whole platform state (invariant I1).
SELECT pg_catalog.pg_extension_config_dump('nx.sandboxes', '');
SELECT pg_catalog.pg_extension_config_dump('nx.blobs', '');
SELECT pg_catalog.pg_extension_config_dump('nx.deployments', '');
SELECT pg_catalog.pg_extension_config_dump('nx.deployments_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nx.promotions', '');
SELECT pg_catalog.pg_extension_config_dump('nx.promotions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('nx.env', '');
SELECT pg_catalog.pg_extension_config_dump('nx.domains', '');
SELECT pg_catalog.pg_extension_config_dump('nx.kept_databases', '');
SELECT pg_catalog.pg_extension_config_dump('nx.events', '');
SELECT pg_catalog.pg_extension_config_dump('nx.events_id_seq', '');
