-- 30_sandboxes.sql: creating, changing and dropping sandboxes, their
-- environment and their database URL.
--
-- Nothing here waits on another user's lock (I13): a new sandbox's uid
-- offset comes from nx.uid_slots with SKIP LOCKED, per-owner quotas lock
-- only the owner's own nx.owners row, and the one unique key two users can
-- race for, the sandbox name, is inserted with a lock_timeout of 1 s.

-- _check_owner raises unless owner may own a sandbox created by caller: a
-- role the caller is (a member of), or anyone for nx_admin; never a role
-- that every developer belongs to (owner => 'nx_user' would share the
-- sandbox with all of them), one of the platform's own roles, a tenant
-- role or a predefined pg_* role.
CREATE FUNCTION nx._check_owner(owner name, caller name) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF owner IS NULL THEN
		RAISE EXCEPTION 'owner must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF owner <> caller AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = owner) THEN
		RAISE EXCEPTION 'role "%" does not exist', owner USING ERRCODE = 'undefined_object';
	END IF;
	IF owner IN ('nx_user', 'nx_admin', 'nx_tenant', 'nx_router', 'public') OR owner LIKE 'pg\_%'
	   OR pg_has_role('nx_user', owner, 'MEMBER')
	   OR (owner <> caller AND pg_has_role(owner, 'nx_tenant', 'MEMBER')) THEN
		RAISE EXCEPTION 'role "%" cannot own a sandbox', owner
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'A sandbox''s owner and every member of that role may act on it; this role is one of the platform''s own roles, a tenant role, or one every nx_user belongs to.',
				HINT = 'Own it yourself, or create a team role for the people who share it (CREATE ROLE team; GRANT team TO alice, bob) and pass owner => ''team''.';
	END IF;
	-- a team role may own sandboxes its members create; anyone else's
	-- only nx_admin may create
	IF owner <> caller AND NOT nx._may_act(owner, caller) THEN
		RAISE EXCEPTION 'permission denied to create a sandbox for role "%"', owner
			USING ERRCODE = 'insufficient_privilege',
				HINT = 'Members of a role may create sandboxes it owns; members of nx_admin may create them for anyone.';
	END IF;
END
$$;

-- _check_limit raises when a limit lies outside what the platform can do
-- (low..high, the table's CHECK) or above this cluster's ceiling (the
-- setting named ceiling_setting).  source says where the value came from
-- (the caller, or a nx.default_* setting).  Sizes are shown in units.
CREATE FUNCTION nx._check_limit(what text, value bigint, low bigint, high bigint,
								ceiling bigint, ceiling_setting text, is_size boolean,
								source text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	shown text := CASE WHEN is_size THEN pg_size_pretty(value) ELSE value::text END;
BEGIN
	IF value IS NULL THEN
		RAISE EXCEPTION '% must not be null', what USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF value < low OR value > high THEN
		RAISE EXCEPTION '% % is out of range', what, shown
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = format('%s must lie between %s and %s%s.', what,
					CASE WHEN is_size THEN pg_size_pretty(low) ELSE low::text END,
					CASE WHEN is_size THEN pg_size_pretty(high) ELSE high::text END,
					CASE WHEN source IS NOT NULL THEN format(' (the value came from %s)', source) ELSE '' END);
	END IF;
	IF ceiling IS NOT NULL AND value > ceiling THEN
		RAISE EXCEPTION '% % is above this cluster''s ceiling of %', what, shown,
			CASE WHEN is_size THEN pg_size_pretty(ceiling) ELSE ceiling::text END
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = format('%s sets the most any sandbox may have, so that one tenant cannot take what the others need%s.',
					ceiling_setting,
					CASE WHEN source IS NOT NULL THEN format('; the value came from %s', source) ELSE '' END),
				HINT = format('Ask for %s or less, or ask an administrator to raise %s.',
					CASE WHEN is_size THEN pg_size_pretty(ceiling) ELSE ceiling::text END, ceiling_setting);
	END IF;
END
$$;

-- _size_setting returns a size-valued setting (GUC_UNIT_MB) in bytes.
CREATE FUNCTION nx._size_setting(setting text) RETURNS bigint
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT pg_size_bytes(nx._setting(setting)) $$;

-- _apply_limits returns s with the limits given (non-NULL arguments)
-- applied, after checking each against its range and ceiling.  NULL
-- arguments keep s's values; where s has none (a new sandbox) the
-- nx.default_* settings fill them in.
CREATE FUNCTION nx._apply_limits(s nx.sandboxes, memory_limit text, pids_limit integer,
								 open_files_limit integer, cpu_weight integer, tmp_size text,
								 idle_timeout interval, connection_limit integer,
								 database_quota text) RETURNS nx.sandboxes
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	src text;
BEGIN
	IF memory_limit IS NOT NULL OR s.memory_limit IS NULL THEN
		src := CASE WHEN memory_limit IS NULL THEN 'nx.default_memory_limit' END;
		s.memory_limit := pg_size_bytes(coalesce(memory_limit, nx._setting('nx.default_memory_limit')));
		PERFORM nx._check_limit('memory_limit', s.memory_limit, 16777216, 1099511627776,
			nx._size_setting('nx.max_memory_limit'), 'nx.max_memory_limit', true, src);
	END IF;
	IF pids_limit IS NOT NULL OR s.pids_limit IS NULL THEN
		src := CASE WHEN pids_limit IS NULL THEN 'nx.default_pids_limit' END;
		s.pids_limit := coalesce(pids_limit, nx._setting('nx.default_pids_limit')::integer);
		PERFORM nx._check_limit('pids_limit', s.pids_limit, 8, 65536,
			least(nx._setting('nx.max_pids_limit')::bigint, nx._host_pid_max()),
			CASE WHEN nx._setting('nx.max_pids_limit')::bigint <= nx._host_pid_max()
				 THEN 'nx.max_pids_limit' ELSE 'the host''s kernel.pid_max' END, false, src);
	END IF;
	IF open_files_limit IS NOT NULL OR s.open_files_limit IS NULL THEN
		src := CASE WHEN open_files_limit IS NULL THEN 'nx.default_open_files_limit' END;
		s.open_files_limit := coalesce(open_files_limit, nx._setting('nx.default_open_files_limit')::integer);
		PERFORM nx._check_limit('open_files_limit', s.open_files_limit, 64, 1048576,
			nx._setting('nx.max_open_files_limit')::bigint, 'nx.max_open_files_limit', false, src);
	END IF;
	IF cpu_weight IS NOT NULL OR s.cpu_weight IS NULL THEN
		src := CASE WHEN cpu_weight IS NULL THEN 'nx.default_cpu_weight' END;
		s.cpu_weight := coalesce(cpu_weight, nx._setting('nx.default_cpu_weight')::integer);
		PERFORM nx._check_limit('cpu_weight', s.cpu_weight, 1, 10000,
			nx._setting('nx.max_cpu_weight')::bigint, 'nx.max_cpu_weight', false, src);
	END IF;
	IF tmp_size IS NOT NULL OR s.tmp_size IS NULL THEN
		src := CASE WHEN tmp_size IS NULL THEN 'nx.default_tmp_size' END;
		s.tmp_size := pg_size_bytes(coalesce(tmp_size, nx._setting('nx.default_tmp_size')));
		PERFORM nx._check_limit('tmp_size', s.tmp_size, 1048576, 68719476736,
			nx._size_setting('nx.max_tmp_size'), 'nx.max_tmp_size', true, src);
	END IF;
	IF idle_timeout IS NOT NULL OR s.idle_timeout IS NULL THEN
		s.idle_timeout := coalesce(idle_timeout, nx._setting('nx.default_idle_timeout')::interval);
		IF s.idle_timeout < interval '0' OR s.idle_timeout > interval '30 days' THEN
			RAISE EXCEPTION 'idle_timeout % is out of range', s.idle_timeout
				USING ERRCODE = 'invalid_parameter_value',
					DETAIL = 'idle_timeout lies between 0 (never stop) and 30 days.';
		END IF;
	END IF;
	IF connection_limit IS NOT NULL OR s.connection_limit IS NULL THEN
		src := CASE WHEN connection_limit IS NULL THEN 'nx.default_connection_limit' END;
		s.connection_limit := coalesce(connection_limit, nx._setting('nx.default_connection_limit')::integer);
		PERFORM nx._check_limit('connection_limit', s.connection_limit, 1, 10000,
			nx._setting('nx.max_connection_limit')::bigint, 'nx.max_connection_limit', false, src);
	END IF;
	IF database_quota IS NOT NULL OR s.database_quota IS NULL THEN
		src := CASE WHEN database_quota IS NULL THEN 'nx.default_database_quota' END;
		s.database_quota := pg_size_bytes(coalesce(database_quota, nx._setting('nx.default_database_quota')));
		PERFORM nx._check_limit('database_quota', s.database_quota, 1048576, 1099511627776,
			nx._size_setting('nx.max_database_quota'), 'nx.max_database_quota', true, src);
	END IF;
	RETURN s;
END
$$;

-- _take_uid_offset returns the lowest uid offset not above
-- nx.max_sandboxes (nor past the cluster's uid slice, nx.uid_slice_size)
-- that no sandbox holds, no dropped sandbox may still run as, and no
-- concurrent creation has taken (its nx.uid_slots row is locked to the end
-- of this transaction; others skip it, never wait).  NULL when there is
-- none: the cluster holds as many sandboxes as it may.
CREATE FUNCTION nx._take_uid_offset() RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT u.uid_offset FROM nx.uid_slots u
	WHERE u.uid_offset <= least(nx._setting('nx.max_sandboxes')::integer,
								nx._setting('nx.uid_slice_size')::integer - 1)
	  AND NOT EXISTS (SELECT 1 FROM nx.sandboxes x WHERE x.uid_offset = u.uid_offset)
	  AND NOT EXISTS (SELECT 1 FROM nx.retired_uid_offsets r WHERE r.uid_offset = u.uid_offset)
	ORDER BY u.uid_offset
	LIMIT 1
	FOR UPDATE SKIP LOCKED
$$;

-- _insert_sandbox inserts the row and its secret.  Another user's open
-- transaction may be creating a sandbox of the same name: the unique key
-- then makes the insert wait for it, for 1 s at most (lock_timeout), and
-- the caller gets a clear error instead of a stall.  A uid offset taken
-- meanwhile by a creation that committed after this statement's snapshot
-- surfaces as unique_violation on sandboxes_uid_offset_key: the caller
-- takes another one.
CREATE FUNCTION nx._insert_sandbox(s nx.sandboxes, password text) RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
AS $$
DECLARE
	violated text;
BEGIN
	INSERT INTO nx.sandboxes SELECT s.*;
	INSERT INTO nx.sandbox_secrets (sandbox, db_password) VALUES (s.name, password);
EXCEPTION
	WHEN lock_not_available THEN
		RAISE EXCEPTION 'sandbox name "%" is being taken by another transaction', s.name
			USING ERRCODE = 'lock_not_available',
				DETAIL = 'Another session has created a sandbox of that name and not committed yet.',
				HINT = 'Try again in a moment; if that session commits, choose another name.';
	WHEN unique_violation THEN
		GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
		IF violated = 'sandboxes_uid_offset_key' THEN
			RAISE;
		END IF;
		RAISE EXCEPTION 'sandbox "%" already exists', s.name
			USING ERRCODE = 'duplicate_object', HINT = 'Choose another name.';
END
$$;

-- create_sandbox: a new sandbox owned by the caller (or by owner, a team
-- role the caller belongs to; nx_admin: anyone).  Limits not given come
-- from the nx.default_* settings; each must lie within its nx.max_*
-- ceiling.  preview_database is what its previews' database is by
-- default (nx.default_preview_database: branch).  The database and role
-- are created by the supervisor after commit.
CREATE FUNCTION nx.create_sandbox(
	name text,
	memory_limit text DEFAULT NULL,
	pids_limit integer DEFAULT NULL,
	open_files_limit integer DEFAULT NULL,
	cpu_weight integer DEFAULT NULL,
	tmp_size text DEFAULT NULL,
	idle_timeout interval DEFAULT NULL,
	connection_limit integer DEFAULT NULL,
	owner name DEFAULT NULL,
	database_quota text DEFAULT NULL,
	preview_database text DEFAULT NULL)
RETURNS nx.sandbox_info
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	caller name := nx._caller();
	s nx.sandboxes;
	result nx.sandbox_info;
	max_per_owner integer := nx._setting('nx.max_sandboxes_per_owner')::integer;
	owned integer;
	role_password text;
BEGIN
	PERFORM nx._check_name(create_sandbox.name);
	s.owner := coalesce(create_sandbox.owner, caller);
	PERFORM nx._check_owner(s.owner, caller);
	s := nx._apply_limits(s, create_sandbox.memory_limit, create_sandbox.pids_limit,
		create_sandbox.open_files_limit, create_sandbox.cpu_weight, create_sandbox.tmp_size,
		create_sandbox.idle_timeout, create_sandbox.connection_limit, create_sandbox.database_quota);
	s.preview_database := coalesce(create_sandbox.preview_database, nx._setting('nx.default_preview_database'));
	PERFORM nx._check_preview_database(s.preview_database, 'preview_database');

	IF EXISTS (SELECT 1 FROM nx.sandboxes x WHERE x.name = create_sandbox.name) THEN
		RAISE EXCEPTION 'sandbox "%" already exists', create_sandbox.name
			USING ERRCODE = 'duplicate_object', HINT = 'Choose another name.';
	END IF;
	IF EXISTS (SELECT 1 FROM nx.kept_databases k WHERE k.sandbox = create_sandbox.name) THEN
		RAISE EXCEPTION 'sandbox name "%" is not free: its database was kept when it was dropped', create_sandbox.name
			USING ERRCODE = 'duplicate_object',
				DETAIL = format('Database %s was kept when its sandbox was dropped.', quote_ident('nx_' || create_sandbox.name)),
				HINT = 'Choose another name; its owner can remove the kept database with nx.drop_kept_database().';
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

	-- per-owner quota: the owner's row is locked, so concurrent creations
	-- by the same owner count each other; other owners never wait on it
	PERFORM nx._owner_for_update(s.owner);
	SELECT count(*) INTO owned FROM nx.sandboxes x WHERE x.owner = s.owner;
	IF owned >= max_per_owner THEN
		RAISE EXCEPTION 'cannot create sandbox "%": role "%" already owns % sandboxes', create_sandbox.name, s.owner, owned
			USING ERRCODE = 'configuration_limit_exceeded',
				DETAIL = format('nx.max_sandboxes_per_owner is %s.', max_per_owner),
				HINT = 'Drop sandboxes you no longer use (nx.drop_sandbox), or ask an administrator to raise nx.max_sandboxes_per_owner.';
	END IF;

	s.name := create_sandbox.name;
	s.role_name := 'nx_' || create_sandbox.name;
	s.database_name := 'nx_' || create_sandbox.name;
	s.created_by := caller;
	s.created_at := now();
	-- the password of a role the supervisor made ahead when it has one:
	-- that role then becomes this sandbox's with a rename, no password
	-- hash on the way (src/supervisor/role_pool.c)
	role_password := nx._new_role_password();
	FOR attempt IN 1..5 LOOP
		s.uid_offset := nx._take_uid_offset();
		IF s.uid_offset IS NULL THEN
			RAISE EXCEPTION 'cannot create sandbox "%": the cluster already holds % sandboxes', create_sandbox.name,
				least(nx._setting('nx.max_sandboxes')::integer, nx._setting('nx.uid_slice_size')::integer - 1)
				USING ERRCODE = 'configuration_limit_exceeded',
					DETAIL = format('Sandboxes being created in open transactions and dropped ones whose processes are still stopping count too; the limit is nx.max_sandboxes (%s), and each sandbox needs one uid of the cluster''s slice of nx.uid_slice_size (%s).',
						nx._setting('nx.max_sandboxes'), nx._setting('nx.uid_slice_size')),
					HINT = 'Drop unused sandboxes, or ask an administrator to raise nx.max_sandboxes (and nx.uid_slice_size).';
		END IF;
		BEGIN
			PERFORM nx._insert_sandbox(s, role_password);
			EXIT;
		EXCEPTION WHEN unique_violation THEN
			-- the offset went to a creation that committed after this
			-- statement's snapshot (READ COMMITTED sees it next time)
			IF attempt = 5 THEN
				RAISE EXCEPTION 'could not allocate a uid offset: concurrent creations took every one tried'
					USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
			END IF;
		END;
	END LOOP;

	PERFORM nx._event('create_sandbox', s.name, NULL, s.owner, nx._limits_json(s));
	SELECT * INTO result FROM nx._sandbox_info_rows(s.name) i;
	RETURN result;
END
$$;

-- _limits_json: a sandbox's limits, for events.
CREATE FUNCTION nx._limits_json(s nx.sandboxes) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT jsonb_build_object('memory_limit', s.memory_limit, 'pids_limit', s.pids_limit,
		'open_files_limit', s.open_files_limit, 'cpu_weight', s.cpu_weight,
		'tmp_size', s.tmp_size, 'idle_timeout', s.idle_timeout::text,
		'connection_limit', s.connection_limit, 'database_quota', s.database_quota,
		'preview_database', s.preview_database)
$$;

-- alter_sandbox: change a sandbox's limits and its previews' default
-- database.  Arguments left NULL keep their value; each new value must lie
-- within its ceiling.  Memory, pids, open files, cpu weight and /tmp apply
-- at each deployment's next start (nx.restart applies them now);
-- idle_timeout, connection_limit and database_quota apply at once,
-- preview_database to the next push.
CREATE FUNCTION nx.alter_sandbox(
	name text,
	memory_limit text DEFAULT NULL,
	pids_limit integer DEFAULT NULL,
	open_files_limit integer DEFAULT NULL,
	cpu_weight integer DEFAULT NULL,
	tmp_size text DEFAULT NULL,
	idle_timeout interval DEFAULT NULL,
	connection_limit integer DEFAULT NULL,
	database_quota text DEFAULT NULL,
	preview_database text DEFAULT NULL)
RETURNS nx.sandbox_info
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	old nx.sandboxes := nx._sandbox_for_update(alter_sandbox.name);
	s nx.sandboxes;
	result nx.sandbox_info;
BEGIN
	s := nx._apply_limits(old, alter_sandbox.memory_limit, alter_sandbox.pids_limit,
		alter_sandbox.open_files_limit, alter_sandbox.cpu_weight, alter_sandbox.tmp_size,
		alter_sandbox.idle_timeout, alter_sandbox.connection_limit, alter_sandbox.database_quota);
	s.preview_database := coalesce(alter_sandbox.preview_database, old.preview_database);
	PERFORM nx._check_preview_database(s.preview_database, 'preview_database');
	UPDATE nx.sandboxes x
	SET memory_limit = s.memory_limit, pids_limit = s.pids_limit,
		open_files_limit = s.open_files_limit, cpu_weight = s.cpu_weight,
		tmp_size = s.tmp_size, idle_timeout = s.idle_timeout,
		connection_limit = s.connection_limit, database_quota = s.database_quota,
		preview_database = s.preview_database
	WHERE x.name = old.name;
	PERFORM nx._event('alter_sandbox', s.name, NULL, s.owner,
		jsonb_build_object('from', nx._limits_json(old), 'to', nx._limits_json(s)));
	SELECT * INTO result FROM nx._sandbox_info_rows(s.name) i;
	RETURN result;
END
$$;

-- drop_sandbox: remove a sandbox and everything it holds, its binaries
-- included.  Its database and role are dropped by the supervisor after
-- commit, unless keep_database, in which case they are recorded in
-- nx.kept_databases and left alone.  Its uid offset is retired until the
-- supervisor has seen its processes gone (I15).
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
	IF coalesce(keep_database, false) THEN
		-- its database, and those of its branch and empty deployments
		INSERT INTO nx.kept_databases (database_name, role_name, sandbox, owner, kept_by)
		SELECT s.database_name, s.role_name, s.name, s.owner, nx._caller()
		UNION ALL
		SELECT nx._branch_name(s.name, d.id), nx._branch_name(s.name, d.id), s.name, s.owner, nx._caller()
		FROM nx.deployments d
		WHERE d.sandbox = s.name AND d.database_mode <> 'production' AND d.desired_state <> 'removed';
	END IF;
	DELETE FROM nx.env e WHERE e.sandbox = s.name;
	DELETE FROM nx.domains m WHERE m.sandbox = s.name;
	DELETE FROM nx.promotions p WHERE p.sandbox = s.name;
	DELETE FROM nx.deployment_secrets x
	WHERE x.deployment IN (SELECT d.id FROM nx.deployments d WHERE d.sandbox = s.name);
	DELETE FROM nx.deployments d WHERE d.sandbox = s.name;
	DELETE FROM nx.blobs b WHERE b.sandbox = s.name;
	DELETE FROM nx.sandbox_secrets x WHERE x.sandbox = s.name;
	DELETE FROM nx.sandboxes x WHERE x.name = s.name;
	INSERT INTO nx.retired_uid_offsets (uid_offset) VALUES (s.uid_offset)
	ON CONFLICT ON CONSTRAINT retired_uid_offsets_pkey DO NOTHING;
	PERFORM nx._event('drop_sandbox', s.name, NULL, s.owner,
		jsonb_build_object('keep_database', coalesce(keep_database, false),
						   'deployments', n_deployments));
	PERFORM nx._routes_changed();
END
$$;

-- drop_kept_database: forget the databases kept by drop_sandbox (the
-- sandbox's own and those of its branch deployments), so that the
-- supervisor drops them (and their roles) and the name becomes free again.
-- Another user's kept database reads as one that does not exist.
CREATE FUNCTION nx.drop_kept_database(sandbox text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	k nx.kept_databases;
	dropped text[];
BEGIN
	IF drop_kept_database.sandbox IS NULL THEN
		RAISE EXCEPTION 'sandbox name must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO k FROM nx.kept_databases x WHERE x.sandbox = drop_kept_database.sandbox
	ORDER BY x.database_name LIMIT 1;
	IF NOT FOUND OR NOT nx._may_act(k.owner, nx._caller()) THEN
		RAISE EXCEPTION 'no kept database for sandbox "%"', left(drop_kept_database.sandbox, 60)
			USING ERRCODE = 'undefined_object',
				HINT = 'nx.kept_database_info lists yours.';
	END IF;
	WITH gone AS (
		DELETE FROM nx.kept_databases x
		WHERE x.sandbox = drop_kept_database.sandbox AND x.owner = k.owner
		RETURNING x.database_name)
	SELECT array_agg(g.database_name::text ORDER BY g.database_name) INTO dropped FROM gone g;
	PERFORM nx._event('drop_kept_database', k.sandbox, NULL, k.owner,
		jsonb_build_object('database', k.database_name, 'databases', to_jsonb(dropped)));
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

-- database_url: how an app (or its owner, on this host) reaches a
-- database of the sandbox: the production database, or with deployment
-- the database that deployment uses (a branch or empty deployment's own);
-- over the cluster's first unix socket directory, with the role's
-- password (read from the secrets tables only after the ownership check).
CREATE FUNCTION nx.database_url(sandbox text, deployment bigint DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._require_sandbox(database_url.sandbox);
	socket_dir text := trim(split_part(current_setting('unix_socket_directories'), ',', 1));
	d nx.deployments;
	db name := s.database_name;
	role name := s.role_name;
	password text := (SELECT x.db_password FROM nx.sandbox_secrets x WHERE x.sandbox = s.name);
BEGIN
	IF database_url.deployment IS NOT NULL THEN
		SELECT * INTO d FROM nx.deployments x
		WHERE x.id = database_url.deployment AND x.sandbox = s.name AND x.desired_state <> 'removed';
		IF NOT FOUND THEN
			RAISE EXCEPTION 'deployment % is not a deployment of sandbox "%"', database_url.deployment, s.name
				USING ERRCODE = 'undefined_object',
					HINT = format('nx.status lists the deployments of sandbox "%s".', s.name);
		END IF;
		IF d.database_mode <> 'production' THEN
			db := nx._branch_name(s.name, d.id);
			role := db;
			password := (SELECT x.db_password FROM nx.deployment_secrets x WHERE x.deployment = d.id);
		END IF;
	END IF;
	-- role and database names are [a-z0-9_-], the password [a-z2-7]: only
	-- the socket directory needs percent-encoding
	RETURN format('postgresql://%s:%s@/%s?host=%s&port=%s',
		role, password, db,
		replace(replace(replace(socket_dir, '%', '%25'), '&', '%26'), ' ', '%20'),
		current_setting('port'));
END
$$;
