-- promote and rollback: production moves between deployments, history is
-- kept, rollback walks back through it.
\set SHOW_CONTEXT never
SET ROLE alice;
SELECT deployment FROM nx.status WHERE sandbox = 'app' ORDER BY deployment;

\set VERBOSITY default
-- nothing promoted yet: no history to roll back to
SELECT nx.rollback('app');

-- health gate: production only moves to a ready deployment.  The
-- supervisor is off in this suite, so the states it would report in
-- nx.runtime are written here by hand.
SELECT nx.promote('app');
RESET ROLE;
INSERT INTO nx.runtime (deployment, state) SELECT id, 'starting' FROM nx.deployments WHERE sandbox = 'app';
SET ROLE alice;
SELECT nx.promote('app', 1);
SELECT state FROM nx.status WHERE deployment = 1;
RESET ROLE;
UPDATE nx.runtime SET state = 'ready';
SET ROLE alice;
SELECT desired_state FROM nx.stop(6);
SELECT nx.promote('app', 6);
-- force => true promotes anyway; an asleep deployment counts as ready
-- (the first request wakes it)
SELECT deployment, production FROM nx.promote('app', 6, force => true);
RESET ROLE;
UPDATE nx.deployments SET asleep_since = now() WHERE id = 1;
DELETE FROM nx.runtime WHERE deployment = 1;
SET ROLE alice;
SELECT deployment, production FROM nx.promote('app', 1);
SELECT deployment, state, asleep_since IS NOT NULL AS asleep FROM nx.status WHERE deployment = 1;
SELECT desired_state FROM nx.start(1);
SELECT deployment, state, asleep_since IS NOT NULL AS asleep FROM nx.status WHERE deployment = 1;
SELECT desired_state FROM nx.start(6);
RESET ROLE;
INSERT INTO nx.runtime (deployment, state) VALUES (1, 'ready');
DELETE FROM nx.promotions;
UPDATE nx.deployments SET is_production = false;
SET ROLE alice;
\set VERBOSITY terse

-- default: the newest deployment
SELECT sandbox, deployment, production, production_url FROM nx.promote('app');
SELECT sandbox, deployment, production FROM nx.promote('app', 1);
SELECT sandbox, deployment, production FROM nx.promote('app', 3);
SELECT deployment, production FROM nx.status WHERE sandbox = 'app' ORDER BY deployment;
SELECT kind, host, deployment FROM nx.routes WHERE kind = 'production';
SELECT production_deployment FROM nx.sandbox_info WHERE sandbox = 'app';

-- rollback: 3 -> 1 -> 7 -> nothing left
SELECT deployment FROM nx.rollback('app');
SELECT deployment FROM nx.rollback('app');
\set VERBOSITY default
SELECT nx.rollback('app');
\set VERBOSITY terse
-- promoting after a rollback starts a new branch of history
SELECT deployment FROM nx.promote('app', 6);
SELECT deployment FROM nx.rollback('app');
SELECT deployment, previous, kind, reverts IS NOT NULL AS reverts_one, promoted_by FROM nx.promotion_log ORDER BY id;

-- promoting the production deployment again changes nothing
SELECT deployment, production FROM nx.promote('app', 7);
SELECT count(*) AS promotions FROM nx.promotion_log;

-- refusals
SELECT sandbox FROM nx.create_sandbox('other');
SELECT p.sandbox, p.deployment FROM test_bin t, nx.push('other', t.bytes) p WHERE t.name = 'true';
\set VERBOSITY default
SELECT nx.promote('app', (SELECT max(deployment) FROM nx.status WHERE sandbox = 'other'));
SELECT nx.promote('app', 424242);
SELECT nx.promote('nope');
SELECT nx.promote('other', 0);
SELECT nx.remove(7);
SELECT nx.remove(1);
SELECT nx.promote('app', 1);
-- the sandbox with nothing deployed
SELECT nx.remove((SELECT max(deployment) FROM nx.status WHERE sandbox = 'other'));
SELECT nx.promote('other');
\set VERBOSITY terse

-- the previous production deployment was removed: rollback says so
SELECT deployment FROM nx.promote('app', 3);
SELECT nx.remove(7);
\set VERBOSITY default
SELECT nx.rollback('app');
\set VERBOSITY terse

-- at most one production deployment per sandbox, never a removed one
RESET ROLE;
SELECT sandbox, count(*) FILTER (WHERE is_production) AS production,
	   count(*) FILTER (WHERE is_production AND desired_state = 'removed') AS removed_production
FROM nx.deployments GROUP BY sandbox ORDER BY sandbox;

-- the hand-written runtime rows are not the supervisor's: remove them
DELETE FROM nx.runtime;

-- the app-level forms of start, stop, restart and remove
SET ROLE alice;
SELECT deployment, production, desired_state FROM nx.stop('app');
SELECT deployment, desired_state FROM nx.start('app');
SELECT deployment, desired_state FROM nx.restart('app', 3);
\set VERBOSITY default
SELECT nx.restart('app', 424242);
SELECT nx.remove('app', 424242);
SELECT nx.stop('nope');
\set VERBOSITY terse
-- a deployment id bound as an untyped parameter (as 0.3.0 clients do)
-- resolves to the app-level form and still means the deployment
PREPARE stop_by_id AS SELECT deployment, desired_state FROM nx.stop($1);
EXECUTE stop_by_id('3');
DEALLOCATE stop_by_id;
SELECT deployment, desired_state FROM nx.start('3');
RESET ROLE;
