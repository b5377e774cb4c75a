-- nx_sandbox 0.2.0 -> 0.3.0: scale to zero and wake on request, activity
-- statistics, health-gated promote, custom domains and the route listing
-- for TLS in front.  The definitions below are copied from src/sql/*.sql;
-- t/004_upgrade.pl checks that an upgraded database matches a fresh 0.3.0
-- install.

\echo Use "ALTER EXTENSION nx_sandbox UPDATE TO '0.3.0'" to load this file. \quit

-- deployments stopped for being idle (scale to zero)
ALTER TABLE nx.deployments ADD COLUMN asleep_since timestamptz,
	ADD CONSTRAINT deployments_asleep_only_running CHECK (asleep_since IS NULL OR desired_state = 'running');
COMMENT ON COLUMN nx.deployments.asleep_since IS 'Set when the supervisor stopped it for being idle (scale to zero); the next request for it wakes it (nx.wake)';

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

-- nx.status: state 'asleep', column asleep_since
CREATE OR REPLACE VIEW nx.status WITH (security_invoker = true) AS
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

-- nx.routes: custom domains, column asleep
CREATE OR REPLACE VIEW nx.routes WITH (security_invoker = true) AS
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

-- functions changed since 0.2.0 (copies of src/sql/*.sql)
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
	DELETE FROM nx.domains m WHERE m.sandbox = s.name;
	DELETE FROM nx.promotions p WHERE p.sandbox = s.name;
	DELETE FROM nx.deployments d WHERE d.sandbox = s.name;
	DELETE FROM nx.sandboxes x WHERE x.name = s.name;
	DELETE FROM nx.blobs b WHERE NOT EXISTS (SELECT 1 FROM nx.deployments d WHERE d.blob = b.sha256);
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

CREATE OR REPLACE FUNCTION nx._set_desired_state(deployment bigint, action text, new_state text,
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

CREATE OR REPLACE FUNCTION nx.remove(deployment bigint) RETURNS void
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

-- promote and rollback take force (health-gated otherwise)
DROP FUNCTION nx.promote(text, bigint);
DROP FUNCTION nx.rollback(text);
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

CREATE OR REPLACE FUNCTION nx.router_routes() RETURNS TABLE (host text, deployment bigint, desired_state text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.host, r.deployment, CASE WHEN r.asleep THEN 'asleep' ELSE r.desired_state END FROM nx.routes r $$;

-- security (see 90_security.sql)
ALTER TABLE nx.domains ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.activity ENABLE ROW LEVEL SECURITY;
ALTER TABLE nx.router_heartbeat ENABLE ROW LEVEL SECURITY;
CREATE POLICY domains_visible ON nx.domains FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.sandboxes s WHERE s.name OPERATOR(pg_catalog.=) sandbox));
CREATE POLICY activity_visible ON nx.activity FOR SELECT TO nx_user
	USING (EXISTS (SELECT 1 FROM nx.deployments d WHERE d.id OPERATOR(pg_catalog.=) deployment));
REVOKE ALL ON ALL TABLES IN SCHEMA nx FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA nx FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA nx FROM PUBLIC;
GRANT SELECT ON nx.domains, nx.activity, nx.stat_deployments TO nx_user;
GRANT EXECUTE ON FUNCTION
	nx.promote(text, bigint, boolean),
	nx.rollback(text, boolean),
	nx.wake(bigint),
	nx.add_domain(text, text),
	nx.remove_domain(text)
TO nx_user;
GRANT EXECUTE ON FUNCTION nx.route_hosts() TO nx_admin;
GRANT EXECUTE ON FUNCTION
	nx.route_hosts(),
	nx.wake(bigint),
	nx.report_activity(boolean, bigint[], integer[], bigint[], bigint[], bigint[], bigint[])
TO nx_router;
SELECT pg_catalog.pg_extension_config_dump('nx.domains', '');

-- nx.push refuses a new blob that does not fit on the disk with room to
-- spare (53100) instead of filling it: a full disk can take the whole
-- cluster down (src/api/disk.c, t/042_exhaustion.pl).
CREATE FUNCTION nx._check_disk_space(size bigint) RETURNS void
	AS 'MODULE_PATHNAME', 'nx_check_disk_space' LANGUAGE C VOLATILE STRICT;
REVOKE ALL ON FUNCTION nx._check_disk_space(bigint) FROM PUBLIC;

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
	-- a full disk can take the whole cluster down: refuse a new blob that
	-- does not fit with room to spare before writing any of it
	IF NOT EXISTS (SELECT 1 FROM nx.blobs b WHERE b.sha256 = report.sha256) THEN
		PERFORM nx._check_disk_space(report.size);
	END IF;
	INSERT INTO nx.blobs (sha256, size, bytes, machine, linkage, interpreter)
	VALUES (report.sha256, report.size, push.binary, report.machine, report.linkage, report.interpreter)
	ON CONFLICT (sha256) DO NOTHING;

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

-- found by the concurrency hammer (t/041): a push racing a drop_sandbox of
-- the same binary (23503), and a sandbox dropped and created again before
-- the supervisor's next pass inheriting the old role and database
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
