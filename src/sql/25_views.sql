-- 25_views.sql: what users and the router read.
--
-- No nx_user may read a table of schema nx (invariant I12).  Row-level
-- security alone was not enough: the planner may use a table's column
-- statistics for leakproof operators such as text <, so EXPLAIN's row
-- estimates of "WHERE value < '...'" leaked the histogram of rows a policy
-- hid, and a binary search recovered another user's secrets.  Views that
-- run with their owner's rights leak the same way once inlined.
--
-- So every view here is a thin SELECT over a SECURITY DEFINER
-- set-returning function.  Such a function is never inlined: the planner
-- sees only its declared ROWS, never the statistics of the tables it
-- reads, and it returns only the rows of sandboxes the caller may act on
-- (nx._may_act with nx._caller(), the outer user).  Conditions a user adds
-- are applied to what the function returned.  t/016_hostile_user.pl runs
-- the binary search against every relation an nx_user can read.

-- _sandbox_info_rows: sandboxes the caller may act on, no secrets.
-- database_size is what its databases (its own and its deployments') used
-- at the supervisor's last measurement; database_over_quota says they are
-- past database_quota and refuse writes (see docs/errors.md).
-- only_sandbox narrows it to one (nx.create_sandbox and nx.alter_sandbox
-- return their sandbox's row): the filter applies before the sizes and
-- quota lookups, so that row costs the same at 10 or 1,000 sandboxes.
CREATE FUNCTION nx._sandbox_info_rows(only_sandbox text DEFAULT NULL)
RETURNS TABLE (sandbox text, owner name, database_name name, role_name name,
			   memory_limit text, pids_limit integer, open_files_limit integer,
			   cpu_weight integer, tmp_size text, idle_timeout interval,
			   connection_limit integer, production_url text,
			   production_deployment bigint, created_by name, created_at timestamptz,
			   database_quota text, preview_database text, database_size text,
			   database_over_quota boolean)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT s.name, s.owner, s.database_name, s.role_name,
		   pg_size_pretty(s.memory_limit), s.pids_limit, s.open_files_limit,
		   s.cpu_weight, pg_size_pretty(s.tmp_size), s.idle_timeout,
		   s.connection_limit, nx._url(nx._production_host(s.name)),
		   (SELECT d.id FROM nx.deployments d WHERE d.sandbox = s.name AND d.is_production),
		   s.created_by, s.created_at, pg_size_pretty(s.database_quota), s.preview_database,
		   (SELECT pg_size_pretty(sum(u.size_bytes)) FROM nx.database_usage u WHERE u.sandbox = s.name),
		   EXISTS (SELECT 1 FROM nx.over_quota o WHERE o.sandbox = s.name)
	FROM nx.sandboxes s
	WHERE (only_sandbox IS NULL OR s.name = only_sandbox)
	  AND nx._may_act(s.owner, nx._caller())
	ORDER BY s.name
$$;

CREATE VIEW nx.sandbox_info WITH (security_invoker = true) AS
SELECT * FROM nx._sandbox_info_rows();
COMMENT ON VIEW nx.sandbox_info IS 'Your sandboxes with their limits and production URL (no secrets)';

-- _status_rows: deployments (not removed) of the caller's sandboxes, with
-- what the supervisor reports of them; only_deployment narrows it to one
-- (the API functions return their deployment's row this way).  Two states
-- come from the rows rather than the process: branching (its database is
-- being copied; branch_bytes_copied of branch_bytes_total so far) and
-- promoting (nx.promote of a preview started it on the production
-- database: it becomes production once ready).
CREATE FUNCTION nx._status_rows(only_deployment bigint DEFAULT NULL)
RETURNS TABLE (sandbox text, deployment bigint, label text, port integer,
			   preview_url text, production boolean, production_url text,
			   desired_state text, sha256 text, size bigint, created_by name,
			   created_at timestamptz, state text, pid integer,
			   started_at timestamptz, ready_at timestamptz, restarts integer,
			   last_exit_code integer, last_signal integer, last_error text,
			   memory_bytes bigint, cpu_usec bigint, asleep_since timestamptz,
			   binary_name text, args text[], database_mode text, database_name name,
			   branch_bytes_copied bigint, branch_bytes_total bigint, promote_from bigint)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT d.sandbox, d.id, d.label, d.port,
		   nx._url(nx._preview_host(d.slug)),
		   d.is_production,
		   CASE WHEN d.is_production THEN nx._url(nx._production_host(d.sandbox)) END,
		   d.desired_state, d.blob, b.size, d.created_by, d.created_at,
		   CASE WHEN d.asleep_since IS NOT NULL AND coalesce(r.state, 'stopped') = 'stopped' THEN 'asleep'
				WHEN br.state = 'copying' AND d.desired_state = 'running' THEN 'branching'
				WHEN br.state = 'failed' AND d.desired_state = 'running' THEN 'failed'
				WHEN d.promote_pending AND coalesce(r.state, 'pending') IN ('pending', 'starting') THEN 'promoting'
				ELSE coalesce(r.state, CASE WHEN d.desired_state = 'running' THEN 'pending' ELSE 'stopped' END)
		   END,
		   r.pid, r.started_at, r.ready_at, coalesce(r.restarts, 0),
		   r.exit_code, r.exit_signal,
		   coalesce(CASE WHEN br.state = 'failed' THEN 'copying the production database failed: ' || br.last_error END,
					r.last_error,
					CASE WHEN d.desired_state = 'running' AND nx._supervisor_pid() = 0
						 THEN 'the supervisor is not running (needs shared_preload_libraries = ''nx_sandbox'' and nx.supervisor = on)' END),
		   r.memory_bytes, r.cpu_usec, d.asleep_since, d.binary_name, d.args,
		   d.database_mode,
		   CASE WHEN d.database_mode = 'production' THEN s.database_name ELSE nx._branch_name(d.sandbox, d.id) END,
		   br.bytes_copied, br.bytes_total, d.promote_from
	FROM nx.deployments d
	JOIN nx.sandboxes s ON s.name = d.sandbox
	JOIN nx.blobs b ON b.sandbox = d.sandbox AND b.sha256 = d.blob
	LEFT JOIN nx.runtime r ON r.deployment = d.id
	LEFT JOIN nx.branches br ON br.deployment = d.id AND d.database_mode <> 'production'
	WHERE d.desired_state <> 'removed'
	  AND (only_deployment IS NULL OR d.id = only_deployment)
	  AND nx._may_act(s.owner, nx._caller())
	ORDER BY d.id
$$;

CREATE VIEW nx.status WITH (security_invoker = true) AS
SELECT * FROM nx._status_rows();
COMMENT ON VIEW nx.status IS 'Your deployments: port, URLs, desired and actual state (asleep: stopped for being idle, wakes on the next request)';

-- _route_rows: which host reaches which of the caller's deployments: the
-- production host and verified custom domains of each sandbox, and the
-- preview host of each deployment.
CREATE FUNCTION nx._route_rows()
RETURNS TABLE (host text, kind text, sandbox text, deployment bigint, port integer,
			   desired_state text, asleep boolean)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT r.host, r.kind, r.sandbox, r.deployment, r.port, r.desired_state, r.asleep
	FROM nx._all_routes() r
	JOIN nx.sandboxes s ON s.name = r.sandbox
	WHERE nx._may_act(s.owner, nx._caller())
$$;

-- _all_routes: every route of every sandbox (not granted to nx_user: the
-- router's functions and _route_rows build on it).
CREATE FUNCTION nx._all_routes()
RETURNS TABLE (host text, kind text, sandbox text, deployment bigint, port integer,
			   desired_state text, asleep boolean)
LANGUAGE sql STABLE ROWS 1000
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT nx._production_host(d.sandbox), 'production', d.sandbox, d.id, d.port,
		   d.desired_state, d.asleep_since IS NOT NULL
	FROM nx.deployments d
	WHERE d.is_production
	UNION ALL
	SELECT nx._preview_host(d.slug), 'preview', d.sandbox, d.id, d.port,
		   d.desired_state, d.asleep_since IS NOT NULL
	FROM nx.deployments d
	WHERE d.desired_state <> 'removed'
	UNION ALL
	SELECT m.domain, 'domain', d.sandbox, d.id, d.port,
		   d.desired_state, d.asleep_since IS NOT NULL
	FROM nx.domains m
	JOIN nx.deployments d ON d.sandbox = m.sandbox AND d.is_production
	WHERE m.verified_at IS NOT NULL
$$;

CREATE VIEW nx.routes WITH (security_invoker = true) AS
SELECT * FROM nx._route_rows();
COMMENT ON VIEW nx.routes IS 'Host names that reach your deployments, and their ports';

-- _stat_deployment_rows: each of the caller's deployments' traffic as the
-- router reports it, and whether it is asleep (scaled to zero).
CREATE FUNCTION nx._stat_deployment_rows()
RETURNS TABLE (sandbox text, deployment bigint, production boolean, desired_state text,
			   asleep_since timestamptz, open_connections integer, connections bigint,
			   bytes_in bigint, bytes_out bigint, last_activity timestamptz,
			   idle_timeout interval, reported_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT d.sandbox, d.id, d.is_production, d.desired_state, d.asleep_since,
		   coalesce(a.open_connections, 0), coalesce(a.connections, 0),
		   coalesce(a.bytes_in, 0), coalesce(a.bytes_out, 0), a.last_activity,
		   s.idle_timeout, a.updated_at
	FROM nx.deployments d
	JOIN nx.sandboxes s ON s.name = d.sandbox
	LEFT JOIN nx.activity a ON a.deployment = d.id
	WHERE d.desired_state <> 'removed'
	  AND nx._may_act(s.owner, nx._caller())
	ORDER BY d.id
$$;

CREATE VIEW nx.stat_deployments WITH (security_invoker = true) AS
SELECT * FROM nx._stat_deployment_rows();
COMMENT ON VIEW nx.stat_deployments IS 'Per-deployment traffic from the router: open connections, connections, bytes, last activity';

-- _event_log_rows: the audit log of the caller's sandboxes (also of
-- dropped ones: events keep their owner).
CREATE FUNCTION nx._event_log_rows()
RETURNS TABLE (id bigint, at timestamptz, actor name, owner name, action text,
			   sandbox text, deployment bigint, details jsonb)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 1000
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT e.id, e.at, e.actor, e.owner, e.action, e.sandbox, e.deployment, e.details
	FROM nx.events e
	WHERE nx._may_act(e.owner, nx._caller())
	ORDER BY e.id
$$;

CREATE VIEW nx.event_log WITH (security_invoker = true) AS
SELECT * FROM nx._event_log_rows();
COMMENT ON VIEW nx.event_log IS 'Audit log of control actions and state changes of your sandboxes';

-- _env_var_rows: the environment variables of the caller's sandboxes,
-- values included (they are the caller's own secrets).
CREATE FUNCTION nx._env_var_rows()
RETURNS TABLE (sandbox text, name text, value text, updated_by name, updated_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT e.sandbox, e.name, e.value, e.updated_by, e.updated_at
	FROM nx.env e
	JOIN nx.sandboxes s ON s.name = e.sandbox
	WHERE nx._may_act(s.owner, nx._caller())
	ORDER BY e.sandbox, e.name
$$;

CREATE VIEW nx.env_vars WITH (security_invoker = true) AS
SELECT * FROM nx._env_var_rows();
COMMENT ON VIEW nx.env_vars IS 'Environment variables of your sandboxes (values included)';

-- _domain_info_rows: the custom domains the caller's sandboxes claim, with
-- the DNS record that proves them.
CREATE FUNCTION nx._domain_info_rows()
RETURNS TABLE (domain text, sandbox text, state text, txt_name text, txt_value text,
			   verified_at timestamptz, verified_by text, checked_at timestamptz,
			   check_result text, created_by name, created_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT m.domain, m.sandbox,
		   CASE WHEN m.verified_at IS NOT NULL THEN 'verified'
				WHEN EXISTS (SELECT 1 FROM nx.domains v WHERE v.domain = m.domain AND v.verified_at IS NOT NULL)
				THEN 'taken' ELSE 'pending' END,
		   nx._domain_txt_name(m.domain), nx._domain_txt_value(s.owner),
		   m.verified_at, m.verified_by, m.checked_at, m.check_result, m.created_by, m.created_at
	FROM nx.domains m
	JOIN nx.sandboxes s ON s.name = m.sandbox
	WHERE nx._may_act(s.owner, nx._caller())
	ORDER BY m.domain, m.sandbox
$$;

CREATE VIEW nx.domain_info WITH (security_invoker = true) AS
SELECT * FROM nx._domain_info_rows();
COMMENT ON VIEW nx.domain_info IS 'Custom domains of your sandboxes: pending, verified or taken, with the TXT record that proves them';

-- _promotion_log_rows: which deployment became production when, by whom.
CREATE FUNCTION nx._promotion_log_rows()
RETURNS TABLE (id bigint, sandbox text, deployment bigint, previous bigint, kind text,
			   reverts bigint, promoted_by name, promoted_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT p.id, p.sandbox, p.deployment, p.previous, p.kind, p.reverts, p.promoted_by, p.promoted_at
	FROM nx.promotions p
	JOIN nx.sandboxes s ON s.name = p.sandbox
	WHERE nx._may_act(s.owner, nx._caller())
	ORDER BY p.id
$$;

CREATE VIEW nx.promotion_log WITH (security_invoker = true) AS
SELECT * FROM nx._promotion_log_rows();
COMMENT ON VIEW nx.promotion_log IS 'Promotion history of your sandboxes (rollback walks it back)';

-- _kept_database_rows: databases of the caller's dropped sandboxes that
-- nx.drop_sandbox(..., keep_database => true) kept.
CREATE FUNCTION nx._kept_database_rows()
RETURNS TABLE (database_name name, role_name name, sandbox text, owner name,
			   kept_by name, kept_at timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER ROWS 100
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT k.database_name, k.role_name, k.sandbox, k.owner, k.kept_by, k.kept_at
	FROM nx.kept_databases k
	WHERE nx._may_act(k.owner, nx._caller())
	ORDER BY k.database_name
$$;

CREATE VIEW nx.kept_database_info WITH (security_invoker = true) AS
SELECT * FROM nx._kept_database_rows();
COMMENT ON VIEW nx.kept_database_info IS 'Databases of your dropped sandboxes that were kept';
