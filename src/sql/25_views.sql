-- 25_views.sql: what users and the router read.  All views are
-- security_invoker, so the row-level security of the tables underneath
-- applies to whoever queries them: a user sees only their own sandboxes.

-- sandbox_info: one row per sandbox, limits in readable units, no secrets.
CREATE VIEW nx.sandbox_info WITH (security_invoker = true) AS
SELECT s.name AS sandbox,
	   s.owner,
	   s.database_name,
	   s.role_name,
	   pg_catalog.pg_size_pretty(s.memory_limit) AS memory_limit,
	   s.pids_limit,
	   s.open_files_limit,
	   s.cpu_weight,
	   pg_catalog.pg_size_pretty(s.tmp_size) AS tmp_size,
	   s.idle_timeout,
	   s.connection_limit,
	   nx._url(nx._production_host(s.name)) AS production_url,
	   (SELECT d.id FROM nx.deployments d
		WHERE d.sandbox OPERATOR(pg_catalog.=) s.name AND d.is_production) AS production_deployment,
	   s.created_by,
	   s.created_at
FROM nx.sandboxes s;
COMMENT ON VIEW nx.sandbox_info IS 'Sandboxes with their limits and production URL (no secrets)';

-- status: one row per deployment that has not been removed, with what the
-- supervisor reports of it (state, pid, restarts, last exit, resources).
CREATE VIEW nx.status WITH (security_invoker = true) AS
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

-- routes: which host reaches which deployment on which port: the
-- production host and custom domains of each sandbox, and the preview host
-- of each deployment.  asleep: stopped for being idle, a request wakes it.
CREATE VIEW nx.routes WITH (security_invoker = true) AS
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
