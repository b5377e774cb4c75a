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
	memory_limit	bigint NOT NULL CHECK (memory_limit BETWEEN 16777216 AND 1099511627776),
	pids_limit		integer NOT NULL CHECK (pids_limit BETWEEN 8 AND 65536),
	open_files_limit integer NOT NULL CHECK (open_files_limit BETWEEN 64 AND 1048576),
	cpu_weight		integer NOT NULL CHECK (cpu_weight BETWEEN 1 AND 10000),
	tmp_size		bigint NOT NULL CHECK (tmp_size BETWEEN 1048576 AND 68719476736),
	idle_timeout	interval NOT NULL CHECK (idle_timeout BETWEEN '0' AND '30 days'),
	connection_limit integer NOT NULL CHECK (connection_limit BETWEEN 1 AND 10000),
	created_by		name NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	uid_offset		integer NOT NULL UNIQUE CHECK (uid_offset BETWEEN 1 AND 65535),
	database_quota	bigint NOT NULL CHECK (database_quota BETWEEN 1048576 AND 1099511627776),
	preview_database text NOT NULL CHECK (preview_database IN ('branch', 'empty', 'production'))
);
COMMENT ON TABLE nx.sandboxes IS 'One row per sandbox (app): owner, limits, database and role names';
COMMENT ON COLUMN nx.sandboxes.uid_offset IS 'The sandbox runs as host uid (start of this cluster''s slice of the cluster user''s /etc/subuid range) + uid_offset';
COMMENT ON COLUMN nx.sandboxes.database_quota IS 'Size its database may reach; past it the supervisor makes it refuse writes';
COMMENT ON COLUMN nx.sandboxes.preview_database IS 'Database a new preview deployment gets: branch (a copy of production''s), empty, or production (shared)';

-- The secrets of a sandbox, apart from everything a user may read (I12):
-- nx_user has no privilege on this table, not even through a view.  Only
-- the supervisor and functions that check ownership first read it.
CREATE TABLE nx.sandbox_secrets (
	sandbox			text PRIMARY KEY REFERENCES nx.sandboxes (name),
	db_password		text NOT NULL CHECK (db_password ~ '^[a-z2-7]{32}$')
);
COMMENT ON TABLE nx.sandbox_secrets IS 'Password of each sandbox''s database role (read by the supervisor and nx.database_url only)';

-- A pushed binary, stored once per sandbox however often it is pushed there
-- (content address).  Blobs are not shared between sandboxes: a shared row
-- let one user's open transaction stall another user's push of the same
-- bytes (the unique-key insert waits), and told a user that someone else
-- had pushed them.  sandbox is the last column because 0.4.0 added it.
CREATE TABLE nx.blobs (
	sha256			text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
	size			bigint NOT NULL CHECK (size > 0),
	bytes			bytea NOT NULL,
	machine			text NOT NULL,
	linkage			text NOT NULL CHECK (linkage IN ('static', 'dynamic')),
	interpreter		text,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	sandbox			text NOT NULL REFERENCES nx.sandboxes (name),
	PRIMARY KEY (sandbox, sha256)
);
COMMENT ON TABLE nx.blobs IS 'Pushed binaries of each sandbox, content-addressed by sha256';
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
	blob			text NOT NULL,
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
	binary_name		text NOT NULL CHECK (binary_name ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$'),
	database_mode	text NOT NULL DEFAULT 'production'
					CHECK (database_mode IN ('production', 'branch', 'empty')),
	promote_from	bigint REFERENCES nx.deployments (id),
	promote_pending	boolean NOT NULL DEFAULT false,
	CONSTRAINT deployments_promote_pending_check
		CHECK (NOT promote_pending OR (promote_from IS NOT NULL AND database_mode = 'production')),
	CHECK ((desired_state = 'removed') = (port IS NULL)),
	CHECK ((desired_state = 'removed') = (removed_at IS NOT NULL)),
	CHECK (NOT (is_production AND desired_state = 'removed')),
	CONSTRAINT deployments_asleep_only_running CHECK (asleep_since IS NULL OR desired_state = 'running'),
	FOREIGN KEY (sandbox, blob) REFERENCES nx.blobs (sandbox, sha256)
);
CREATE UNIQUE INDEX deployments_one_production ON nx.deployments (sandbox) WHERE is_production;
CREATE INDEX deployments_sandbox ON nx.deployments (sandbox, id);
CREATE INDEX deployments_blob ON nx.deployments (sandbox, blob);
COMMENT ON TABLE nx.deployments IS 'Pushed binaries placed in a sandbox, each with a port and a preview URL';
COMMENT ON COLUMN nx.deployments.restart_generation IS 'Bumped by nx.restart; the supervisor restarts a deployment whose generation changed';
COMMENT ON COLUMN nx.deployments.database_mode IS 'production: the sandbox''s database; branch: its own copy of it, taken at push; empty: its own empty database';
COMMENT ON COLUMN nx.deployments.promote_from IS 'Set when nx.promote of a branch or empty preview created this deployment on the production database';
COMMENT ON COLUMN nx.deployments.promote_pending IS 'It becomes production as soon as it is ready (the second half of an asynchronous promote)';
COMMENT ON COLUMN nx.deployments.binary_name IS 'The app''s file name inside the sandbox (/app/<binary_name>) and its argv[0]';
COMMENT ON COLUMN nx.deployments.args IS 'Arguments after argv[0]; $NAME and ${NAME} expand to the platform''s non-secret variables at each start, $$ is a literal $';
COMMENT ON COLUMN nx.deployments.asleep_since IS 'Set when the supervisor stopped it for being idle (scale to zero); the next request for it wakes it (nx.wake)';

CREATE INDEX deployments_promote_pending ON nx.deployments (id) WHERE promote_pending;

-- The passwords of the database roles of branch and empty deployments
-- (nx_<sandbox>_<id>), apart like nx.sandbox_secrets.
CREATE TABLE nx.deployment_secrets (
	deployment		bigint PRIMARY KEY REFERENCES nx.deployments (id),
	db_password		text NOT NULL CHECK (db_password ~ '^[a-z2-7]{32}$')
);
COMMENT ON TABLE nx.deployment_secrets IS 'Password of each branch or empty deployment''s database role (read by the supervisor and nx.database_url only)';

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
-- production deployment, like <sandbox>.<nx.domain> does.  Adding one is a
-- claim: it routes (and /.nx/ask approves it for a certificate) only once
-- verified, by a DNS TXT record with the owner's token or by an nx_admin.
-- Several sandboxes may claim a name; the first verified one wins it.
CREATE TABLE nx.domains (
	domain			text NOT NULL
					CHECK (pg_catalog.length(domain) <= 253
						   AND domain ~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
	sandbox			text NOT NULL REFERENCES nx.sandboxes (name),
	created_by		name NOT NULL,
	created_at		timestamptz NOT NULL DEFAULT pg_catalog.now(),
	verified_at		timestamptz,
	verified_by		text,
	checked_at		timestamptz,
	check_result	text,
	PRIMARY KEY (domain, sandbox),
	CHECK ((verified_at IS NULL) = (verified_by IS NULL))
);
CREATE INDEX domains_sandbox ON nx.domains (sandbox);
CREATE UNIQUE INDEX domains_one_verified ON nx.domains (domain) WHERE verified_at IS NOT NULL;
COMMENT ON TABLE nx.domains IS 'Custom host names claimed for a sandbox; routed to its production deployment once verified';
COMMENT ON COLUMN nx.domains.verified_by IS '''dns'' (TXT record found) or ''admin:<role>'' (nx.approve_domain)';
COMMENT ON COLUMN nx.domains.checked_at IS 'When the supervisor last looked for the TXT record';

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

-- Per-owner state: the row each owner's quota checks lock (so that
-- concurrent creations by one owner count each other, while other owners
-- never wait), and the owner's domain verification token.  Dumped: the
-- tokens in DNS records must stay valid after a restore.
CREATE TABLE nx.owners (
	owner			name PRIMARY KEY,
	domain_token	text NOT NULL CHECK (domain_token ~ '^[a-z2-7]{32}$')
);
COMMENT ON TABLE nx.owners IS 'One row per sandbox owner: quota lock and domain verification token';

-- Every TCP port a deployment may get, as a row to lock: nx.push takes the
-- lowest free one with FOR UPDATE SKIP LOCKED, so concurrent pushes never
-- wait for each other (a global lock let one user's open transaction stall
-- every other user's push).  Derived: filled at install, not dumped.
CREATE TABLE nx.ports (
	port			integer PRIMARY KEY CHECK (port BETWEEN 1024 AND 65535)
);
INSERT INTO nx.ports SELECT g FROM pg_catalog.generate_series(1024, 65535) g;
COMMENT ON TABLE nx.ports IS 'Lock targets for port allocation (one row per port; derived, not dumped)';

-- Every sandbox uid offset, as a row to lock, the same way: a new sandbox
-- takes the lowest free offset not above nx.max_sandboxes, which also
-- enforces that limit exactly without serializing creations.
CREATE TABLE nx.uid_slots (
	uid_offset		integer PRIMARY KEY CHECK (uid_offset BETWEEN 1 AND 65535)
);
INSERT INTO nx.uid_slots SELECT g FROM pg_catalog.generate_series(1, 65535) g;
COMMENT ON TABLE nx.uid_slots IS 'Lock targets for uid offset allocation (one row per offset; derived, not dumped)';

-- Offsets of dropped sandboxes whose processes may still run (stop grace):
-- not given to a new sandbox until the supervisor has seen them all gone
-- (I15).  Derived state: not dumped (nothing runs after a restore).
CREATE TABLE nx.retired_uid_offsets (
	uid_offset		integer PRIMARY KEY,
	retired_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE nx.retired_uid_offsets IS 'Uid offsets of dropped sandboxes, kept from reuse until nothing runs as them';

-- The supervisor's record of each branch or empty deployment's database
-- (derived state, rebuilt after a restore: not dumped).  A branch is
-- usable only once its copy finished (state ready); one found copying
-- after a crash is dropped and copied again, so a half-copied database is
-- never used.
CREATE TABLE nx.branches (
	deployment		bigint PRIMARY KEY,
	database_name	name NOT NULL UNIQUE,
	state			text NOT NULL CHECK (state IN ('copying', 'ready', 'failed')),
	attempts		integer NOT NULL DEFAULT 0,
	bytes_copied	bigint NOT NULL DEFAULT 0,
	bytes_total		bigint,
	started_at		timestamptz,
	finished_at		timestamptz,
	last_error		text
);
COMMENT ON TABLE nx.branches IS 'Copies of production databases for branch deployments, and empty databases (derived, not dumped)';

-- What the supervisor measured of each tenant database (a sandbox's, and
-- its branch and empty deployments' own): derived state, unlogged, not
-- dumped.  activity fingerprints the database's statistics (transactions,
-- sessions) and busy says a session was at work at the measurement: a
-- database is measured again only when one of them says it may have grown
-- (nx._quota_pass).
CREATE UNLOGGED TABLE nx.database_usage (
	database_name	name PRIMARY KEY,
	sandbox			text NOT NULL,
	size_bytes		bigint NOT NULL,
	busy			boolean NOT NULL,
	activity		bigint NOT NULL,
	measured_at		timestamptz NOT NULL
);
COMMENT ON TABLE nx.database_usage IS 'Size of each tenant database at its last measurement (derived, not dumped)';

-- Sandboxes whose databases together are past their database_quota: their
-- databases refuse writes until they are back under (derived state).
CREATE UNLOGGED TABLE nx.over_quota (
	sandbox			text PRIMARY KEY,
	used_bytes		bigint NOT NULL,
	quota_bytes		bigint NOT NULL,
	since			timestamptz NOT NULL
);
COMMENT ON TABLE nx.over_quota IS 'Sandboxes over their database_quota, whose databases refuse writes (derived, not dumped)';
