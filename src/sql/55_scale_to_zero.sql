-- 55_scale_to_zero.sql: idle stop and wake on request.
--
-- The router reports each deployment's traffic every second
-- (report_activity, into the unlogged nx.activity).  The supervisor stops a
-- deployment that has had no connection open for its sandbox's
-- idle_timeout (_idle_deployments, then _mark_asleep once the deployment's
-- nx-init agrees that no connection was handed out recently); the row keeps
-- desired_state 'running' with asleep_since set.  The next request for it
-- makes the router call wake, which clears asleep_since; the supervisor,
-- woken at commit, starts it, and the router hands the held request over
-- as soon as it is ready.

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
	-- a row its owner holds locked (an open transaction) is skipped, never
	-- waited for (I13): the next pass tries again
	UPDATE nx.deployments x SET asleep_since = now()
	WHERE x.id = (SELECT y.id FROM nx.deployments y
				  WHERE y.id = _mark_asleep.deployment AND y.desired_state = 'running'
					AND y.asleep_since IS NULL
				  FOR NO KEY UPDATE SKIP LOCKED)
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
		-- the router never waits for a row a user holds locked (I13): it
		-- asks again on its next retry
		SELECT * INTO d FROM nx.deployments x WHERE x.id = wake.deployment
		FOR NO KEY UPDATE SKIP LOCKED;
		IF NOT FOUND THEN
			RETURN false;
		END IF;
	ELSE
		d := nx._deployment_for_update(wake.deployment);
	END IF;
	IF d.asleep_since IS NULL THEN
		RETURN false;
	END IF;
	-- no write to nx.activity: a user's open transaction must never hold a
	-- row the router's reports write (I13).  The idle timeout starts again
	-- from the new start's ready_at anyway.
	UPDATE nx.deployments x SET asleep_since = NULL WHERE x.id = d.id;
	SELECT s.owner INTO owner FROM nx.sandboxes s WHERE s.name = d.sandbox;
	PERFORM nx._event('wake', d.sandbox, d.id, owner,
		jsonb_build_object('asleep_since', d.asleep_since));
	-- the supervisor starts just this deployment, without a full pass
	PERFORM nx._wake_deployment(d.id);
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
