-- 50_promotions.sql: which deployment serves the production URL.
-- Promoting is one row update (is_production) plus a history row; the router
-- picks up the new route when the transaction commits.

-- _make_production moves the production flag of a sandbox to target and
-- records the promotion (by promoted_by, default the caller); returns the
-- deployment that was production.
CREATE FUNCTION nx._make_production(s nx.sandboxes, target bigint, kind text,
									reverts bigint, promoted_by name DEFAULT NULL) RETURNS bigint
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
	VALUES (s.name, target, previous, kind, reverts, coalesce(promoted_by, nx._caller()));
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

-- _promote_by_copy: the first half of promoting a branch or empty
-- deployment d of s: a new deployment of the same binary, name, args, env
-- and label on the production database, marked to become production when
-- ready (promote_pending).  A pending promotion of the sandbox that has not
-- completed is replaced (its deployment removed).  Returns the new
-- deployment's status row.
CREATE FUNCTION nx._promote_by_copy(s nx.sandboxes, d nx.deployments) RETURNS nx.status
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	n nx.deployments;
	old nx.deployments;
	new_id bigint;
	live bigint;
	result nx.status;
BEGIN
	FOR old IN SELECT * FROM nx.deployments x WHERE x.sandbox = s.name AND x.promote_pending FOR UPDATE LOOP
		UPDATE nx.deployments x
		SET promote_pending = false, desired_state = 'removed', port = NULL, removed_at = now(), asleep_since = NULL
		WHERE x.id = old.id;
		PERFORM nx._event('promote_failed', s.name, old.id, s.owner,
			jsonb_build_object('promote_from', old.promote_from, 'reason', 'replaced by a newer promote'));
	END LOOP;
	SELECT count(*) INTO live FROM nx.deployments x WHERE x.sandbox = s.name AND x.desired_state <> 'removed';
	IF live >= nx._setting('nx.max_deployments_per_sandbox')::integer THEN
		RAISE EXCEPTION 'cannot promote deployment % of sandbox "%": promoting a preview starts a new deployment, and the sandbox already has %', d.id, s.name, live
			USING ERRCODE = 'configuration_limit_exceeded',
				HINT = 'Remove a deployment you no longer need (nx.remove), or ask an administrator to raise nx.max_deployments_per_sandbox.';
	END IF;
	n.sandbox := s.name;
	n.blob := d.blob;
	n.label := d.label;
	n.args := d.args;
	n.env := d.env;
	n.binary_name := d.binary_name;
	n.created_by := nx._caller();
	n.database_mode := 'production';
	n.promote_from := d.id;
	n.promote_pending := true;
	new_id := nx._insert_deployment(n);
	PERFORM nx._event('promote_requested', s.name, new_id, s.owner,
		jsonb_build_object('promote_from', d.id, 'database', d.database_mode));
	PERFORM nx._routes_changed();
	SELECT * INTO result FROM nx._status_rows(new_id);
	RETURN result;
END
$$;

-- _complete_promotions: the second half (the supervisor runs it after
-- writing nx.runtime): every promote_pending deployment that is ready
-- becomes production; one that failed, crashlooped or was stopped is
-- given up, with an event, and production stays as it was.  Rows a user
-- holds locked are skipped until the next call (I13).  Returns how many
-- promotions completed.
CREATE FUNCTION nx._complete_promotions() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	d nx.deployments;
	s nx.sandboxes;
	r nx.runtime;
	done integer := 0;
BEGIN
	FOR d IN SELECT x.* FROM nx.deployments x WHERE x.promote_pending
			 FOR NO KEY UPDATE SKIP LOCKED LOOP
		SELECT * INTO s FROM nx.sandboxes y WHERE y.name = d.sandbox FOR UPDATE SKIP LOCKED;
		CONTINUE WHEN NOT FOUND;
		SELECT * INTO r FROM nx.runtime z WHERE z.deployment = d.id;
		IF r.state = 'ready' AND d.desired_state = 'running' THEN
			UPDATE nx.deployments x SET promote_pending = false WHERE x.id = d.id;
			PERFORM nx._make_production(s, d.id, 'promote', NULL, d.created_by);
			done := done + 1;
		ELSIF d.desired_state <> 'running' OR r.state IN ('failed', 'crashloop') THEN
			UPDATE nx.deployments x SET promote_pending = false WHERE x.id = d.id;
			PERFORM nx._event('promote_failed', s.name, d.id, s.owner,
				jsonb_build_object('promote_from', d.promote_from,
								   'reason', CASE WHEN d.desired_state <> 'running' THEN 'it was stopped'
												  ELSE format('it did not become ready (%s): %s', r.state, r.last_error) END));
		END IF;
	END LOOP;
	RETURN done;
END
$$;

-- promote: make a deployment (by default the newest one) the production
-- deployment of its sandbox.  Only a ready (or asleep) deployment is
-- promoted unless force is true.  A preview with a database of its own
-- (branch or empty) is promoted asynchronously: see _promote_by_copy.
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
	ELSIF d.database_mode <> 'production' THEN
		-- a preview on a database of its own: production must run on the
		-- production database, so promoting starts its binary there as a
		-- new deployment, which becomes production once ready (the
		-- supervisor, nx._complete_promotions); this call returns it at
		-- once, in state promoting.  The preview keeps running.
		RETURN nx._promote_by_copy(s, d);
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
