-- events: every successful control action left exactly one event, in order,
-- with the acting role; failed calls left none.
\set SHOW_CONTEXT never
SELECT action, count(*) FROM nx.events GROUP BY action ORDER BY action;
SELECT actor, owner, action, sandbox, deployment FROM nx.events ORDER BY id;
-- env values never reach the audit log
SELECT count(*) AS leaked FROM nx.events WHERE details::text LIKE '%hello%';
-- a user sees the events of their own sandboxes only, even of dropped ones
SET ROLE alice;
SELECT DISTINCT sandbox FROM nx.event_log ORDER BY 1;
SET ROLE bob;
SELECT DISTINCT sandbox FROM nx.event_log ORDER BY 1;
RESET ROLE;
