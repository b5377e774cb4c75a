-- scale_to_zero: idle stop and wake as rows (the supervisor is off here;
-- t/022_wake.pl runs the whole path), activity reports, custom domains.
\set SHOW_CONTEXT never
SELECT sandbox FROM nx.create_sandbox('sleepy', idle_timeout => '5 minutes');
SELECT deployment FROM test_bin t, nx.push('sleepy', t.bytes) WHERE t.name = 'true';
SELECT max(id) AS d FROM nx.deployments WHERE sandbox = 'sleepy' \gset

-- only the router reports activity
SET ROLE alice;
\set VERBOSITY default
SELECT nx.report_activity(true, '{}', '{}', '{}', '{}', '{}', '{}');
RESET ROLE;
CREATE ROLE test_router LOGIN IN ROLE nx_router;
SET ROLE test_router;
SELECT nx.report_activity(false, ARRAY[:d]::bigint[], '{1,2}', '{1}', '{1}', '{1}', '{1}');
\set VERBOSITY terse
SELECT nx.report_activity(true, ARRAY[:d, 424242]::bigint[], '{2,1}', '{3,1}', '{100,1}', '{2000,1}', '{50,1}');
SELECT nx.report_activity(false, ARRAY[:d]::bigint[], '{0}', '{1}', '{10}', '{20}', ARRAY[NULL]::bigint[]);
-- the router may read only what it needs
SELECT count(*) > 0 AS has_routes FROM nx.router_routes();
SELECT count(*) FROM nx.activity;
RESET ROLE;
-- counters add up, open connections are the latest, unknown ids are ignored
SELECT deployment = :d AS ours, open_connections, connections, bytes_in, bytes_out,
	   last_activity BETWEEN now() - interval '1 minute' AND now() AS recent
FROM nx.stat_deployments WHERE sandbox = 'sleepy';
SELECT count(*) AS rows_for_unknown_ids FROM nx.activity WHERE deployment = 424242;
SELECT reporter FROM nx.router_heartbeat;

-- idle: nothing is idle until it is ready, has no open connection and
-- its timeout has passed since its last activity
SELECT count(*) AS idle FROM nx._idle_deployments();
INSERT INTO nx.runtime (deployment, state, ready_at) VALUES (:d, 'ready', now() - interval '1 hour');
UPDATE nx.activity SET last_activity = now() - interval '10 minutes', open_connections = 1;
SELECT count(*) AS idle_with_open_connection FROM nx._idle_deployments();
UPDATE nx.activity SET open_connections = 0;
SELECT array_agg(i) = ARRAY[:d]::bigint[] AS idle_now FROM nx._idle_deployments() i;
-- ... and only while the router reports
UPDATE nx.router_heartbeat SET reported_at = now() - interval '1 minute';
SELECT count(*) AS idle_without_router FROM nx._idle_deployments();
UPDATE nx.router_heartbeat SET reported_at = now();

-- the supervisor marks it asleep: event idle_stop, state asleep
SELECT nx._mark_asleep(:d);
SELECT nx._mark_asleep(:d) AS second_time;
DELETE FROM nx.runtime WHERE deployment = :d;
SELECT state, asleep_since IS NOT NULL AS asleep FROM nx.status WHERE deployment = :d;
SELECT desired_state FROM nx.router_routes() WHERE deployment = :d;
SELECT actor, action, details ? 'idle_timeout' AS says_why FROM nx.events WHERE action = 'idle_stop';

-- wake: by the router (any deployment) or the owner (only their own)
SET ROLE bob;
\set VERBOSITY default
SELECT nx.wake(:d);
\set VERBOSITY terse
RESET ROLE;
SET ROLE test_router;
SELECT nx.wake(:d) AS woke;
SELECT nx.wake(:d) AS woke_again;
SELECT nx.wake(424242) AS unknown;
RESET ROLE;
SELECT state, asleep_since IS NULL AS awake FROM nx.status WHERE deployment = :d;
SELECT actor, action FROM nx.events WHERE action = 'wake';
-- stop and start clear it too; asleep is only for running deployments
SELECT nx._mark_asleep(:d);
SELECT desired_state, asleep_since IS NULL AS awake FROM nx.stop(:d);
SELECT nx._mark_asleep(:d) AS stopped_is_never_asleep;
UPDATE nx.deployments SET asleep_since = now() WHERE id = :d;
SELECT desired_state FROM nx.start(:d);

-- custom domains: a claim routes nowhere until it is verified
SELECT domain, sandbox, state, txt_name, txt_value ~ '^nx-verify=[a-z2-7]{32}$' AS txt_ok
FROM nx.add_domain('sleepy', 'Shop.Example.COM.');
SELECT domain, state FROM nx.add_domain('sleepy', 'shop.example.com') AS again_is_fine;
SELECT domain, sandbox, verified_at IS NULL AS pending FROM nx.domains;
SELECT deployment FROM nx.promote('sleepy', :d, force => true) \gset p_
SELECT count(*) AS routed_before_verification FROM nx.routes WHERE sandbox = 'sleepy' AND kind = 'domain';
SELECT count(*) AS asked_before_verification FROM nx.route_hosts() WHERE kind = 'domain';
-- the supervisor found the owner's TXT record (src/supervisor/domains.c)
SELECT domain, sandbox FROM nx._domain_checks_due(10);
SELECT nx._record_domain_check('shop.example.com', 'sleepy', false, 'no TXT record');
SELECT count(*) AS due_right_after_a_check FROM nx._domain_checks_due(10);
SELECT nx._record_domain_check('shop.example.com', 'sleepy', true, 'found');
SELECT domain, state, verified_by FROM nx.domain_info;
SELECT host, kind, deployment = :d AS ours FROM nx.routes WHERE sandbox = 'sleepy' AND kind = 'domain';
SELECT host, kind FROM nx.route_hosts() WHERE sandbox = 'sleepy' AND kind <> 'preview';
\set VERBOSITY default
SELECT nx.add_domain('sleepy', 'localhost');
SELECT nx.add_domain('sleepy', 'x.sleepy.localhost');
SELECT nx.add_domain('sleepy', 'app.localhost');
SELECT nx.add_domain('sleepy', '127.0.0.1');
SELECT nx.add_domain('sleepy', '0.0.0.0');
SELECT nx.add_domain('sleepy', '10.1.2.3');
SELECT nx.add_domain('sleepy', 'printer.local');
SELECT nx.add_domain('sleepy', 'db.internal');
SELECT nx.add_domain('sleepy', 'http://a.example.com/');
SELECT nx.add_domain('sleepy', '-a.example.com');
SELECT nx.add_domain('sleepy', repeat('a', 64) || '.com');
SELECT nx.add_domain('sleepy', NULL);
-- a name won by one sandbox cannot be claimed by another
SELECT nx.add_domain('app', 'shop.example.com');
SET ROLE bob;
SELECT nx.remove_domain('shop.example.com');
SELECT count(*) AS bob_sees FROM nx.domain_info;
-- nor verified by hand except by nx_admin
SELECT nx.approve_domain('shop.example.com', 'sleepy');
RESET ROLE;
SELECT nx.remove_domain('nope.example.com');
\set VERBOSITY terse
-- two claims of one name: the first verified wins, the other is taken
SET ROLE alice;
SELECT domain, state FROM nx.add_domain('app', 'race.example.com');
RESET ROLE;
SELECT domain, state FROM nx.add_domain('sleepy', 'race.example.com');
SELECT domain, sandbox, state, verified_by FROM nx.approve_domain('race.example.com', 'sleepy');
SET ROLE alice;
SELECT domain, sandbox, state FROM nx.domain_info WHERE domain = 'race.example.com';
SELECT domain, state FROM nx.check_domain('race.example.com');
RESET ROLE;
SELECT nx._record_domain_check('race.example.com', 'app', true, 'found') AS second_verification;
\set VERBOSITY default
SELECT nx.approve_domain('race.example.com', 'app');
\set VERBOSITY terse
SET ROLE alice;
SELECT nx.remove_domain('race.example.com');
RESET ROLE;
SELECT nx.remove_domain('race.example.com');
SELECT nx.remove_domain('SHOP.example.com');
SELECT count(*) FROM nx.domains;
SELECT action, details->>'domain' AS domain FROM nx.events WHERE action LIKE '%domain' ORDER BY id;
-- dropping a sandbox drops its domains
SELECT domain FROM nx.add_domain('sleepy', 'other.example.org');
SELECT nx.drop_sandbox('sleepy');
SELECT count(*) AS domains_left FROM nx.domains;
DROP ROLE test_router;
