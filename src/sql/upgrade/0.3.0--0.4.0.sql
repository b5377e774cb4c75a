-- nx_sandbox 0.3.0 -> 0.4.0: the table changes.  The Makefile appends every
-- other part of src/sql (all but 10_tables.sql) to this file, so functions,
-- views and grants are recreated from the very definitions a fresh install
-- uses; t/004_upgrade.pl checks that an upgraded catalog equals a fresh one.
--
-- What changes: no nx_user may read a table any more (views over
-- ownership-checking functions instead), the database password moves to
-- nx.sandbox_secrets, binaries belong to one sandbox, ports and uid
-- offsets are allocated without a global lock, per-owner quotas and
-- database quotas, custom domains must be verified, and a deployment
-- records its binary's name (argv[0]).

\echo Use "ALTER EXTENSION nx_sandbox UPDATE TO '0.4.0'" to load this file. \quit

-- everything but the tables is recreated below: drop it first
DROP VIEW nx.status, nx.routes, nx.sandbox_info, nx.stat_deployments CASCADE;
DO $drop$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
			 WHERE p.pronamespace = 'nx'::regnamespace LOOP
		EXECUTE pg_catalog.format('DROP FUNCTION %s CASCADE', f);
	END LOOP;
END
$drop$;
DROP TYPE nx.binary_report CASCADE;
DROP POLICY IF EXISTS sandboxes_visible ON nx.sandboxes;
DROP POLICY IF EXISTS deployments_visible ON nx.deployments;
DROP POLICY IF EXISTS blobs_visible ON nx.blobs;
DROP POLICY IF EXISTS promotions_visible ON nx.promotions;
DROP POLICY IF EXISTS env_visible ON nx.env;
DROP POLICY IF EXISTS kept_databases_visible ON nx.kept_databases;
DROP POLICY IF EXISTS events_visible ON nx.events;
DROP POLICY IF EXISTS runtime_visible ON nx.runtime;
DROP POLICY IF EXISTS domains_visible ON nx.domains;
DROP POLICY IF EXISTS activity_visible ON nx.activity;
REVOKE SELECT ON ALL TABLES IN SCHEMA nx FROM nx_user;

-- sandboxes: the password moves out; a database quota; offsets within a
-- cluster's uid slice
CREATE TABLE nx.sandbox_secrets (
	sandbox			text PRIMARY KEY REFERENCES nx.sandboxes (name),
	db_password		text NOT NULL CHECK (db_password ~ '^[a-z2-7]{32}$')
);
COMMENT ON TABLE nx.sandbox_secrets IS 'Password of each sandbox''s database role (read by the supervisor and nx.database_url only)';
INSERT INTO nx.sandbox_secrets (sandbox, db_password) SELECT name, db_password FROM nx.sandboxes;
ALTER TABLE nx.sandboxes DROP COLUMN db_password;
ALTER TABLE nx.sandboxes ADD COLUMN database_quota bigint NOT NULL DEFAULT 1073741824
	CHECK (database_quota BETWEEN 1048576 AND 1099511627776);
ALTER TABLE nx.sandboxes ALTER COLUMN database_quota DROP DEFAULT;
ALTER TABLE nx.sandboxes DROP CONSTRAINT sandboxes_uid_offset_check;
ALTER TABLE nx.sandboxes ADD CONSTRAINT sandboxes_uid_offset_check CHECK (uid_offset BETWEEN 1 AND 65535);
COMMENT ON COLUMN nx.sandboxes.uid_offset IS 'The sandbox runs as host uid (start of this cluster''s slice of the cluster user''s /etc/subuid range) + uid_offset';
COMMENT ON COLUMN nx.sandboxes.database_quota IS 'Size its database may reach; past it the supervisor makes it refuse writes';

-- blobs belong to one sandbox: one copy per sandbox that uses it
ALTER TABLE nx.deployments DROP CONSTRAINT deployments_blob_fkey;
ALTER TABLE nx.blobs DROP CONSTRAINT blobs_pkey;
ALTER TABLE nx.blobs ADD COLUMN sandbox text REFERENCES nx.sandboxes (name);
INSERT INTO nx.blobs (sha256, size, bytes, machine, linkage, interpreter, created_at, sandbox)
SELECT b.sha256, b.size, b.bytes, b.machine, b.linkage, b.interpreter, b.created_at, u.sandbox
FROM nx.blobs b JOIN (SELECT DISTINCT d.sandbox, d.blob FROM nx.deployments d) u ON u.blob = b.sha256
WHERE b.sandbox IS NULL;
DELETE FROM nx.blobs WHERE sandbox IS NULL;
ALTER TABLE nx.blobs ALTER COLUMN sandbox SET NOT NULL;
ALTER TABLE nx.blobs ADD PRIMARY KEY (sandbox, sha256);
COMMENT ON TABLE nx.blobs IS 'Pushed binaries of each sandbox, content-addressed by sha256';
ALTER TABLE nx.deployments ADD FOREIGN KEY (sandbox, blob) REFERENCES nx.blobs (sandbox, sha256);
DROP INDEX nx.deployments_blob;
CREATE INDEX deployments_blob ON nx.deployments (sandbox, blob);

-- deployments: argv[0] (it was the sandbox's name), and $ in args now
-- starts a variable: existing ones stay literal
ALTER TABLE nx.deployments ADD COLUMN binary_name text
	CHECK (binary_name ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$');
UPDATE nx.deployments SET binary_name = sandbox;
ALTER TABLE nx.deployments ALTER COLUMN binary_name SET NOT NULL;
UPDATE nx.deployments SET args = (SELECT coalesce(array_agg(replace(a, '$', '$$') ORDER BY i), '{}')
								  FROM unnest(args) WITH ORDINALITY u(a, i))
WHERE array_to_string(args, ' ') LIKE '%$%';
COMMENT ON COLUMN nx.deployments.binary_name IS 'The app''s file name inside the sandbox (/app/<binary_name>) and its argv[0]';
COMMENT ON COLUMN nx.deployments.args IS 'Arguments after argv[0]; $NAME and ${NAME} expand to the platform''s non-secret variables at each start, $$ is a literal $';

-- domains become claims, verified before they route.  Those routed
-- before stay routed (verified by the upgrade) unless they are names
-- nobody may claim any more (IP addresses, reserved names): those wait
-- for an nx_admin.
ALTER TABLE nx.domains DROP CONSTRAINT domains_pkey;
ALTER TABLE nx.domains ADD COLUMN verified_at timestamptz, ADD COLUMN verified_by text,
	ADD COLUMN checked_at timestamptz, ADD COLUMN check_result text,
	ADD PRIMARY KEY (domain, sandbox),
	ADD CHECK ((verified_at IS NULL) = (verified_by IS NULL));
UPDATE nx.domains SET verified_at = created_at, verified_by = 'admin:upgrade'
WHERE substring(domain from '[^.]+$') !~ '^[0-9]+$'
  AND substring(domain from '[^.]+$') NOT IN ('localhost', 'local', 'invalid', 'arpa', 'internal');
CREATE UNIQUE INDEX domains_one_verified ON nx.domains (domain) WHERE verified_at IS NOT NULL;
COMMENT ON TABLE nx.domains IS 'Custom host names claimed for a sandbox; routed to its production deployment once verified';
COMMENT ON COLUMN nx.domains.verified_by IS '''dns'' (TXT record found) or ''admin:<role>'' (nx.approve_domain)';
COMMENT ON COLUMN nx.domains.checked_at IS 'When the supervisor last looked for the TXT record';

-- the new tables (as in 10_tables.sql)
CREATE TABLE nx.owners (
	owner			name PRIMARY KEY,
	domain_token	text NOT NULL CHECK (domain_token ~ '^[a-z2-7]{32}$')
);
COMMENT ON TABLE nx.owners IS 'One row per sandbox owner: quota lock and domain verification token';
CREATE TABLE nx.ports (
	port			integer PRIMARY KEY CHECK (port BETWEEN 1024 AND 65535)
);
INSERT INTO nx.ports SELECT g FROM pg_catalog.generate_series(1024, 65535) g;
COMMENT ON TABLE nx.ports IS 'Lock targets for port allocation (one row per port; derived, not dumped)';
CREATE TABLE nx.uid_slots (
	uid_offset		integer PRIMARY KEY CHECK (uid_offset BETWEEN 1 AND 65535)
);
INSERT INTO nx.uid_slots SELECT g FROM pg_catalog.generate_series(1, 65535) g;
COMMENT ON TABLE nx.uid_slots IS 'Lock targets for uid offset allocation (one row per offset; derived, not dumped)';
CREATE TABLE nx.retired_uid_offsets (
	uid_offset		integer PRIMARY KEY,
	retired_at		timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE nx.retired_uid_offsets IS 'Uid offsets of dropped sandboxes, kept from reuse until nothing runs as them';

-- preview databases: each deployment says which database it uses; the
-- sandbox says what previews get by default
ALTER TABLE nx.sandboxes ADD COLUMN preview_database text NOT NULL DEFAULT 'production'
	CHECK (preview_database IN ('branch', 'empty', 'production'));
ALTER TABLE nx.sandboxes ALTER COLUMN preview_database DROP DEFAULT;
COMMENT ON COLUMN nx.sandboxes.preview_database IS 'Database a new preview deployment gets: branch (a copy of production''s), empty, or production (shared)';
ALTER TABLE nx.deployments ADD COLUMN database_mode text NOT NULL DEFAULT 'production'
		CHECK (database_mode IN ('production', 'branch', 'empty')),
	ADD COLUMN promote_from bigint REFERENCES nx.deployments (id),
	ADD COLUMN promote_pending boolean NOT NULL DEFAULT false,
	ADD CONSTRAINT deployments_promote_pending_check
		CHECK (NOT promote_pending OR (promote_from IS NOT NULL AND database_mode = 'production'));
COMMENT ON COLUMN nx.deployments.database_mode IS 'production: the sandbox''s database; branch: its own copy of it, taken at push; empty: its own empty database';
COMMENT ON COLUMN nx.deployments.promote_from IS 'Set when nx.promote of a branch or empty preview created this deployment on the production database';
COMMENT ON COLUMN nx.deployments.promote_pending IS 'It becomes production as soon as it is ready (the second half of an asynchronous promote)';
CREATE INDEX deployments_promote_pending ON nx.deployments (id) WHERE promote_pending;
CREATE TABLE nx.deployment_secrets (
	deployment		bigint PRIMARY KEY REFERENCES nx.deployments (id),
	db_password		text NOT NULL CHECK (db_password ~ '^[a-z2-7]{32}$')
);
COMMENT ON TABLE nx.deployment_secrets IS 'Password of each branch or empty deployment''s database role (read by the supervisor and nx.database_url only)';
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
