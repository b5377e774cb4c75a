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
