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
