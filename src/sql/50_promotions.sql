-- 50_promotions.sql: which deployment serves the production URL.
-- Promoting is one row update (is_production) plus a history row; the router
-- picks up the new route when the transaction commits.

-- _make_production moves the production flag of a sandbox to target and
-- records the promotion; returns the deployment that was production.
CREATE FUNCTION nx._make_production(s nx.sandboxes, target bigint, kind text,
									reverts bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	previous bigint;
BEGIN
	SELECT d.id INTO previous FROM nx.deployments d
	WHERE d.sandbox = s.name AND d.is_production FOR UPDATE;
	UPDATE nx.deployments d SET is_production = false WHERE d.sandbox = s.name AND d.is_production;
	UPDATE nx.deployments d SET is_production = true WHERE d.id = target;
	INSERT INTO nx.promotions (sandbox, deployment, previous, kind, reverts, promoted_by)
	VALUES (s.name, target, previous, kind, reverts, nx._caller());
	PERFORM nx._event(kind, s.name, target, s.owner,
		jsonb_build_object('previous', previous));
	PERFORM nx._routes_changed();
	RETURN previous;
END
$$;

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

-- promote: make a deployment (by default the newest one) the production
-- deployment of its sandbox.  Only a ready (or asleep) deployment is
-- promoted unless force is true.
CREATE FUNCTION nx.promote(sandbox text, deployment bigint DEFAULT NULL, force boolean DEFAULT false) RETURNS nx.status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(promote.sandbox);
	d nx.deployments;
	result nx.status;
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
		-- a missing deployment and another sandbox's (maybe another
		-- user's) answer the same: ids are sequential, and the error must
		-- not tell which exist
		SELECT * INTO d FROM nx.deployments x
		WHERE x.id = promote.deployment AND x.sandbox = s.name FOR UPDATE;
		IF NOT FOUND THEN
			RAISE EXCEPTION 'deployment % is not a deployment of sandbox "%"', promote.deployment, s.name
				USING ERRCODE = 'undefined_object',
					HINT = format('nx.status lists the deployments of sandbox "%s".', s.name);
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
	SELECT * INTO result FROM nx._status_rows(d.id);
	RETURN result;
END
$$;

-- rollback: undo the most recent promotion that has not been undone yet,
-- making the deployment that was production before it production again.
-- Repeated rollbacks walk further back through the history.  Like
-- promote, it only moves production to a ready (or asleep) deployment
-- unless force is true.
CREATE FUNCTION nx.rollback(sandbox text, force boolean DEFAULT false) RETURNS nx.status
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(rollback.sandbox);
	last_promotion nx.promotions;
	target nx.deployments;
	result nx.status;
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
	SELECT * INTO result FROM nx._status_rows(target.id);
	RETURN result;
END
$$;
