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
