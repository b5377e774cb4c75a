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

-- (src/supervisor/role_pool.c) a new sandbox role's password: that of a
-- role the supervisor made ahead, else a fresh random one
CREATE FUNCTION nx._new_role_password() RETURNS text
	AS 'MODULE_PATHNAME', 'nx_new_role_password' LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- (src/api/host_limits.c) the host's kernel.pid_max: no pids_limit above it
CREATE FUNCTION nx._host_pid_max() RETURNS integer
	AS 'MODULE_PATHNAME', 'nx_host_pid_max' LANGUAGE C STABLE PARALLEL SAFE;

-- (src/api/disk.c) raises disk_full unless a new blob of this size fits
-- on the server's disk with room to spare
CREATE FUNCTION nx._check_disk_space(size bigint) RETURNS void
	AS 'MODULE_PATHNAME', 'nx_check_disk_space' LANGUAGE C VOLATILE STRICT;

-- The supervisor (src/supervisor/wake.c): wake it when this transaction
-- commits; the pass the last _wake_supervisor call asked for is only to
-- start this deployment (nx.wake, nx.start, nx.restart, nx.push: the start
-- fast path, no full pass); its pid, 0 when none runs.
CREATE FUNCTION nx._wake_supervisor() RETURNS void
	AS 'MODULE_PATHNAME', 'nx_wake_supervisor' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION nx._wake_deployment(deployment bigint) RETURNS void
	AS 'MODULE_PATHNAME', 'nx_wake_deployment' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
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
				HINT = 'Create it with nx.create_sandbox(); nx.sandbox_info lists yours.';
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

-- _owner_for_update locks the nx.owners row of owner (creating it, with a
-- fresh domain token, the first time), so that the per-owner quota checks
-- of concurrent calls count each other.  Only this owner's own calls (or
-- its team's) ever wait on that row: no other user can lock it.
CREATE FUNCTION nx._owner_for_update(owner name) RETURNS nx.owners
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	o nx.owners;
BEGIN
	INSERT INTO nx.owners (owner, domain_token) VALUES (_owner_for_update.owner, nx._random_token(32))
	ON CONFLICT ON CONSTRAINT owners_pkey DO NOTHING;
	SELECT * INTO STRICT o FROM nx.owners x WHERE x.owner = _owner_for_update.owner FOR NO KEY UPDATE;
	RETURN o;
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
				HINT = 'nx.status lists yours.';
	END IF;
	PERFORM nx._sandbox_for_update(owning_sandbox);
	-- the sandbox may have been dropped (and a namesake created) between
	-- the lookup and the lock: then the deployment is gone
	SELECT * INTO d FROM nx.deployments dep
	WHERE dep.id = deployment AND dep.sandbox = owning_sandbox FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'deployment % does not exist', deployment
			USING ERRCODE = 'undefined_object',
				HINT = 'nx.status lists yours.';
	END IF;
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

-- Custom domains are proven by a DNS TXT record: at _nx-verify.<domain>,
-- the value nx-verify=<token of the sandbox's owner> (nx.owners).  The
-- token is per owner, so one record serves every sandbox of that owner,
-- and no other user of this host can produce it.
CREATE FUNCTION nx._domain_txt_name(domain text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT '_nx-verify.' || domain $$;

CREATE FUNCTION nx._domain_txt_value(owner name) RETURNS text
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 'nx-verify=' || o.domain_token FROM nx.owners o WHERE o.owner = _domain_txt_value.owner $$;

-- A deployment with a database of its own (database_mode branch or empty)
-- logs in as role nx_<sandbox>_<id> to the database of the same name, so
-- that pg_hba.conf's "sameuser" rule confines it like a sandbox role.
-- Sandbox names have no underscore, so this never equals nx_<sandbox>, and
-- it fits in 63 bytes: 3 + 40 + 1 + 19 (the longest bigint).
CREATE FUNCTION nx._branch_name(sandbox text, deployment bigint) RETURNS name
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ('nx_' || sandbox || '_' || deployment)::name $$;

-- _check_preview_database raises unless mode is a database mode.
CREATE FUNCTION nx._check_preview_database(mode text, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF mode IS NULL OR mode NOT IN ('branch', 'empty', 'production') THEN
		RAISE EXCEPTION 'invalid % %', what, coalesce(quote_literal(left(mode, 40)), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'branch: a database of its own, a copy of production''s taken at push; empty: a database of its own, empty; production: the production database itself.',
				HINT = 'Use ''branch'', ''empty'' or ''production''.';
	END IF;
END
$$;
