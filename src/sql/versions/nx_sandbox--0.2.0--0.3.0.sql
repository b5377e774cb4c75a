-- nx_sandbox 0.2.0 -> 0.3.0: scale to zero and wake on request, activity
-- statistics, health-gated promote, custom domains and the route listing
-- for TLS in front.  The definitions below are copied from src/sql/*.sql;
-- t/004_upgrade.pl checks that an upgraded database matches a fresh 0.3.0
-- install.

\echo Use "ALTER EXTENSION nx_sandbox UPDATE TO '0.3.0'" to load this file. \quit

-- Concurrency fixes found by t/041_hammer.pl: create_sandbox refuses a name
-- whose dropped database or role the supervisor has not removed yet
-- (55006); push holds the blob it uses with FOR KEY SHARE, and drop_sandbox
-- deletes unused blobs through nx._delete_unused_blobs, so that a push and
-- a drop of the same bytes no longer fail with 23503.

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

REVOKE ALL ON FUNCTION nx._delete_unused_blobs() FROM PUBLIC;

-- create_sandbox: a new sandbox owned by the caller (or, for nx_admin, by
-- owner).  Limits not given come from the nx.default_* settings.  The
-- database and role are created by the supervisor after commit.
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

-- drop_sandbox: remove a sandbox and everything it holds.  Its database and
-- role are dropped by the supervisor after commit, unless keep_database,
-- in which case they are recorded in nx.kept_databases and left alone.
-- Binaries no other deployment uses are deleted.
CREATE OR REPLACE FUNCTION nx.drop_sandbox(name text, keep_database boolean DEFAULT false)
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

-- push: store a binary (once per content) and create a deployment of it in
-- the sandbox, with its own port and preview URL, desired state running.
-- Refuses, before storing anything, what nx.verify_binary says cannot run.
CREATE OR REPLACE FUNCTION nx.push(sandbox text, binary bytea, label text DEFAULT NULL,
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
