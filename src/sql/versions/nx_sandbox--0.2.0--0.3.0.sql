-- nx_sandbox 0.2.0 -> 0.3.0: scale to zero and wake on request, activity
-- statistics, health-gated promote, custom domains and the route listing
-- for TLS in front.  The definitions below are copied from src/sql/*.sql;
-- t/004_upgrade.pl checks that an upgraded database matches a fresh 0.3.0
-- install.

\echo Use "ALTER EXTENSION nx_sandbox UPDATE TO '0.3.0'" to load this file. \quit
