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
	missing_libraries	text[],		-- those the sandbox's loader would not load
	size				bigint,
	sha256				text,
	missing_versions	text[]		-- symbol versions no library here defines,
									-- e.g. 'libc.so.6 (GLIBC_2.99)' (0.4.0)
);

CREATE FUNCTION nx.verify_binary(binary bytea) RETURNS nx.binary_report
	AS 'MODULE_PATHNAME', 'nx_verify_binary' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION nx.verify_binary(bytea) IS 'Can this file run as an app here? Never raises an error for bad bytes';

CREATE FUNCTION nx._require_runnable(binary bytea) RETURNS nx.binary_report
	AS 'MODULE_PATHNAME', 'nx_require_runnable' LANGUAGE C STABLE STRICT PARALLEL SAFE;

-- _allocate_port returns the lowest port of nx.port_range that no
-- deployment holds and no concurrent push has taken: its nx.ports row is
-- locked to the end of this transaction, and concurrent pushes skip locked
-- rows instead of waiting (a global lock let one user's open transaction
-- stall every other user's push).  NULL when none is left.
CREATE FUNCTION nx._allocate_port() RETURNS integer
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT p.port FROM nx.ports p
	WHERE p.port BETWEEN split_part(nx._setting('nx.port_range'), '-', 1)::integer
					 AND split_part(nx._setting('nx.port_range'), '-', 2)::integer
	  AND NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.port = p.port)
	ORDER BY p.port
	LIMIT 1
	FOR UPDATE SKIP LOCKED
$$;

-- _new_slug returns a preview slug no deployment has: 16 characters of
-- base32 from the CSPRNG (80 bits), so preview URLs cannot be guessed.
CREATE FUNCTION nx._new_slug() RETURNS text
LANGUAGE plpgsql VOLATILE
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

-- _arg_variables: the variables $NAME in args may name, with a sample
-- value each (for checking at push).  Only names whose values are not
-- secret: a command line is visible to every process on the host.
CREATE FUNCTION nx._arg_variables() RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['PORT', 'NX_SANDBOX', 'NX_DEPLOYMENT', 'PGHOST', 'PGPORT', 'PGDATABASE', 'PGUSER'] $$;

-- _expand_arg replaces $NAME and ${NAME} in arg with vars->>NAME, and $$
-- with $.  Raises for a name not in vars and for a $ followed by anything
-- else; arg_index is the argument's index, for the message.
CREATE FUNCTION nx._expand_arg(arg text, vars jsonb, arg_index integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	done text := '';
	rest text := arg;
	at integer;
	m text[];
	var text;
BEGIN
	LOOP
		at := strpos(rest, '$');
		EXIT WHEN at = 0;
		done := done || left(rest, at - 1);
		rest := substr(rest, at);
		IF left(rest, 2) = '$$' THEN
			done := done || '$';
			rest := substr(rest, 3);
			CONTINUE;
		END IF;
		m := regexp_match(rest, '^\$(\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))');
		IF m IS NULL THEN
			RAISE EXCEPTION 'argument % (%) has a $ that does not start a variable', arg_index, quote_literal(left(arg, 80))
				USING ERRCODE = 'invalid_parameter_value',
					DETAIL = 'In args, $NAME and ${NAME} expand to a platform variable when the deployment starts.',
					HINT = 'Write $$ for a literal $.';
		END IF;
		var := coalesce(m[2], m[3]);
		IF NOT vars ? var THEN
			RAISE EXCEPTION 'argument % (%) uses $%, which is not a variable the platform expands', arg_index, quote_literal(left(arg, 80)), var
				USING ERRCODE = 'invalid_parameter_value',
					DETAIL = format('args may use %s; secrets (DATABASE_URL, PGPASSWORD, your own env) are never put on a command line, where every process on the host can read them.',
								  array_to_string(nx._arg_variables(), ', ')),
					HINT = 'Read other values from the environment inside the app; write $$ for a literal $.';
		END IF;
		done := done || (vars ->> var);
		rest := substr(rest, length(m[1]) + 2);
	END LOOP;
	RETURN done || rest;
END
$fn$;

-- _expand_args expands every argument (the supervisor calls it at each
-- start, with the deployment's values).
CREATE FUNCTION nx._expand_args(args text[], vars jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(array_agg(nx._expand_arg(a, vars, i::integer) ORDER BY i), '{}')
	FROM unnest(args) WITH ORDINALITY AS u(a, i)
$$;

-- _check_push_options raises on a bad label, binary name, argument list
-- or env override.
CREATE FUNCTION nx._check_push_options(label text, args text[], env jsonb, binary_name text) RETURNS void
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
	IF binary_name IS NULL OR binary_name !~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$' THEN
		RAISE EXCEPTION 'invalid binary name %', coalesce(quote_literal(left(binary_name, 80)), 'NULL')
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'The binary name is the app''s file name in the sandbox (/app/<name>) and its argv[0]: 1 to 128 letters, digits, dots, underscores and hyphens, not starting with a dot.',
				HINT = 'For a multi-call binary give the name it dispatches on, e.g. name => ''busybox''.';
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
	-- every $NAME must be one the platform expands
	PERFORM nx._expand_args(args, (SELECT jsonb_object_agg(n, '') FROM unnest(nx._arg_variables()) n));
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

-- _insert_deployment inserts a deployment with the lowest free port,
-- trying another when a push that committed after this statement's
-- snapshot took the one chosen (READ COMMITTED sees it on the next try).
-- A deployment with a database of its own gets its role's password.
CREATE FUNCTION nx._insert_deployment(d nx.deployments) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	new_id bigint;
BEGIN
	FOR attempt IN 1..5 LOOP
		d.port := nx._allocate_port();
		IF d.port IS NULL THEN
			RAISE EXCEPTION 'no free port left in nx.port_range (%)', nx._setting('nx.port_range')
				USING ERRCODE = 'configuration_limit_exceeded',
					DETAIL = 'Every port of the range is held by a deployment that has not been removed, or is being taken by a push that has not committed yet.',
					HINT = 'Remove unused deployments with nx.remove(), or ask an administrator to widen nx.port_range.';
		END IF;
		BEGIN
			INSERT INTO nx.deployments (sandbox, blob, label, args, env, port, slug, created_by, binary_name,
										database_mode, promote_from, promote_pending)
			VALUES (d.sandbox, d.blob, d.label, d.args, d.env, d.port, nx._new_slug(), d.created_by, d.binary_name,
					coalesce(d.database_mode, 'production'), d.promote_from, coalesce(d.promote_pending, false))
			RETURNING id INTO new_id;
			IF coalesce(d.database_mode, 'production') <> 'production' THEN
				INSERT INTO nx.deployment_secrets (deployment, db_password) VALUES (new_id, nx._random_token(32));
			END IF;
			RETURN new_id;
		EXCEPTION WHEN unique_violation THEN
			IF attempt = 5 THEN
				RAISE EXCEPTION 'could not allocate a port: concurrent pushes took every one tried'
					USING ERRCODE = 'serialization_failure', HINT = 'Retry the transaction.';
			END IF;
		END;
	END LOOP;
END
$$;

-- _check_database_mode decides the database of a new deployment of s:
-- the one asked for, else the sandbox's preview_database, except for its
-- very first deployment, which has no production data to branch and uses
-- production.  Refuses a branch past nx.max_branches_per_sandbox or of a
-- production database larger than nx.max_branch_size.
CREATE FUNCTION nx._check_database_mode(s nx.sandboxes, asked text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	mode text;
	own integer;
	max_own integer := nx._setting('nx.max_branches_per_sandbox')::integer;
	size bigint;
	max_size bigint := nx._size_setting('nx.max_branch_size');
BEGIN
	IF asked IS NOT NULL THEN
		PERFORM nx._check_preview_database(asked, 'database');
		mode := asked;
	ELSIF NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.sandbox = s.name) THEN
		mode := 'production';
	ELSE
		mode := s.preview_database;
	END IF;
	IF mode = 'production' THEN
		RETURN mode;
	END IF;
	SELECT count(*) INTO own FROM nx.deployments d
	WHERE d.sandbox = s.name AND d.database_mode <> 'production' AND d.desired_state <> 'removed';
	IF own >= max_own THEN
		RAISE EXCEPTION 'sandbox "%" already has % deployments with a database of their own', s.name, own
			USING ERRCODE = 'configuration_limit_exceeded',
				DETAIL = format('nx.max_branches_per_sandbox is %s; each branch or empty deployment holds a database and a role.', max_own),
				HINT = 'Remove previews you no longer need (nx.remove), push with database => ''production'', or ask an administrator to raise nx.max_branches_per_sandbox.';
	END IF;
	IF mode = 'branch' THEN
		size := (SELECT pg_database_size(db.oid) FROM pg_database db WHERE db.datname = s.database_name);
		IF size > max_size THEN
			RAISE EXCEPTION 'cannot branch the database of sandbox "%": it holds %, more than nx.max_branch_size (%)',
				s.name, pg_size_pretty(size), pg_size_pretty(max_size)
				USING ERRCODE = 'program_limit_exceeded',
					DETAIL = 'A branch is a full copy of the production database, made for each preview.',
					HINT = 'Push with database => ''empty'' (an empty database of its own) or ''production'' (the production database itself), or ask an administrator to raise nx.max_branch_size.';
		END IF;
	END IF;
	RETURN mode;
END
$$;

-- push: store a binary (once per content and sandbox) and create a
-- deployment of it in the sandbox, with its own port and preview URL,
-- desired state running.  Refuses, before storing anything, what
-- nx.verify_binary says cannot run.  name is the app's file name and
-- argv[0] (default: the sandbox's name).  database says which database
-- it uses (see _check_database_mode): a branch deployment starts once the
-- supervisor has copied production's database for it.
CREATE FUNCTION nx.push(sandbox text, binary bytea, label text DEFAULT NULL,
						args text[] DEFAULT '{}', env jsonb DEFAULT '{}', name text DEFAULT NULL,
						database text DEFAULT NULL)
RETURNS nx.status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(push.sandbox);
	report nx.binary_report;
	live_deployments bigint;
	max_deployments integer := nx._setting('nx.max_deployments_per_sandbox')::integer;
	max_per_owner integer := nx._setting('nx.max_deployments_per_owner')::integer;
	d nx.deployments;
	new_id bigint;
	result nx.status;
BEGIN
	IF push.binary IS NULL THEN
		RAISE EXCEPTION 'binary must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	d.binary_name := coalesce(push.name, s.name);
	PERFORM nx._check_push_options(push.label, push.args, push.env, d.binary_name);
	d.database_mode := nx._check_database_mode(s, push.database);
	SELECT count(*) INTO live_deployments FROM nx.deployments x
	WHERE x.sandbox = s.name AND x.desired_state <> 'removed';
	IF live_deployments >= max_deployments THEN
		RAISE EXCEPTION 'sandbox "%" already has % deployments', s.name, live_deployments
			USING ERRCODE = 'configuration_limit_exceeded',
				HINT = 'Remove old ones with nx.remove(deployment), or ask an administrator to raise nx.max_deployments_per_sandbox.';
	END IF;
	-- per-owner quota: the owner's row is locked, so the owner's concurrent
	-- pushes (to any of its sandboxes) count each other
	PERFORM nx._owner_for_update(s.owner);
	SELECT count(*) INTO live_deployments FROM nx.deployments x JOIN nx.sandboxes y ON y.name = x.sandbox
	WHERE y.owner = s.owner AND x.desired_state <> 'removed';
	IF live_deployments >= max_per_owner THEN
		RAISE EXCEPTION 'role "%" already has % deployments', s.owner, live_deployments
			USING ERRCODE = 'configuration_limit_exceeded',
				DETAIL = format('nx.max_deployments_per_owner is %s; deployments that were not removed count, in every sandbox of the owner.', max_per_owner),
				HINT = 'Remove old ones with nx.remove(deployment), or ask an administrator to raise nx.max_deployments_per_owner.';
	END IF;

	report := nx._require_runnable(push.binary);
	-- a full disk can take the whole cluster down: refuse a new blob that
	-- does not fit with room to spare before writing any of it.  Blobs
	-- belong to one sandbox, whose row this transaction holds: nothing
	-- else can be storing or deleting this one meanwhile.
	IF NOT EXISTS (SELECT 1 FROM nx.blobs b WHERE b.sandbox = s.name AND b.sha256 = report.sha256) THEN
		PERFORM nx._check_disk_space(report.size);
		INSERT INTO nx.blobs (sandbox, sha256, size, bytes, machine, linkage, interpreter)
		VALUES (s.name, report.sha256, report.size, push.binary, report.machine, report.linkage, report.interpreter);
	END IF;

	d.sandbox := s.name;
	d.blob := report.sha256;
	d.label := push.label;
	d.args := push.args;
	d.env := push.env;
	d.created_by := nx._caller();
	new_id := nx._insert_deployment(d);

	PERFORM nx._event('push', s.name, new_id, s.owner,
		jsonb_build_object('sha256', report.sha256, 'size', report.size,
						   'label', push.label, 'linkage', report.linkage,
						   'name', d.binary_name, 'database', d.database_mode));
	-- the supervisor starts just this one, without a full pass, unless it
	-- needs a database of its own (a preview's: a pass makes it)
	IF d.database_mode = 'production' THEN
		PERFORM nx._wake_deployment(new_id);
	END IF;
	PERFORM nx._routes_changed();
	SELECT * INTO result FROM nx._status_rows(new_id);
	RETURN result;
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
	result nx.status;
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
	-- the supervisor starts (or restarts) just this one, without a full pass
	IF new_state = 'running' THEN
		PERFORM nx._wake_deployment(d.id);
	END IF;
	PERFORM nx._routes_changed();
	SELECT * INTO result FROM nx._status_rows(d.id);
	RETURN result;
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

-- _app_deployment finds, for the app-level forms of start, stop, restart
-- and remove, the deployment of sandbox s named by deployment, or (NULL)
-- its production deployment, else its newest live one; raises like a
-- missing deployment otherwise.  An all-digit "sandbox" is a deployment id
-- (the caller checks ownership, as for the id forms).
CREATE FUNCTION nx._app_deployment(sandbox text, deployment bigint) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes;
	found_id bigint;
BEGIN
	-- a client that binds a deployment id as an untyped parameter
	-- (nx.stop($1) with '42') reaches this form: no sandbox name is all
	-- digits, so it means the deployment, as in 0.3.0
	IF _app_deployment.deployment IS NULL AND _app_deployment.sandbox ~ '^[0-9]{1,18}$' THEN
		RETURN _app_deployment.sandbox::bigint;
	END IF;
	s := nx._require_sandbox(_app_deployment.sandbox);
	SELECT d.id INTO found_id FROM nx.deployments d
	WHERE d.sandbox = s.name AND d.desired_state <> 'removed'
	  AND (_app_deployment.deployment IS NULL OR d.id = _app_deployment.deployment)
	ORDER BY d.is_production DESC, d.id DESC LIMIT 1;
	IF found_id IS NULL THEN
		IF _app_deployment.deployment IS NULL THEN
			RAISE EXCEPTION 'sandbox "%" has no deployment', s.name
				USING ERRCODE = 'undefined_object', HINT = 'Push a binary first with nx.push().';
		END IF;
		RAISE EXCEPTION 'deployment % is not a deployment of sandbox "%"', _app_deployment.deployment, s.name
			USING ERRCODE = 'undefined_object',
				HINT = format('nx.status lists the deployments of sandbox "%s".', s.name);
	END IF;
	RETURN found_id;
END
$$;

-- The app-level forms: the deployment of a sandbox (default: production,
-- else the newest).  nx.start(42) and nx.start('app') both work: a
-- quoted name resolves to these, a number to the deployment-id forms.
CREATE FUNCTION nx.start(sandbox text, deployment bigint DEFAULT NULL) RETURNS nx.status
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nx._set_desired_state(nx._app_deployment(sandbox, deployment), 'start', 'running', false) $$;

CREATE FUNCTION nx.stop(sandbox text, deployment bigint DEFAULT NULL) RETURNS nx.status
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nx._set_desired_state(nx._app_deployment(sandbox, deployment), 'stop', 'stopped', false) $$;

CREATE FUNCTION nx.restart(sandbox text, deployment bigint DEFAULT NULL) RETURNS nx.status
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nx._set_desired_state(nx._app_deployment(sandbox, deployment), 'restart', 'running', true) $$;

CREATE FUNCTION nx.remove(sandbox text, deployment bigint) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT nx.remove(nx._app_deployment(sandbox, deployment)) $$;
