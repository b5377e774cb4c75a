-- nx_sandbox 0.2.0 -> 0.3.0: scale to zero and wake on request, activity
-- statistics, health-gated promote, custom domains and the route listing
-- for TLS in front.  The definitions below are copied from src/sql/*.sql;
-- t/004_upgrade.pl checks that an upgraded database matches a fresh 0.3.0
-- install.

\echo Use "ALTER EXTENSION nx_sandbox UPDATE TO '0.3.0'" to load this file. \quit

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
