-- env: per-sandbox environment variables.
\set SHOW_CONTEXT never
SET ROLE alice;
SELECT nx.set_env('app', 'GREETING', 'hello');
SELECT nx.set_env('app', 'GREETING', 'hello again');
SELECT nx.set_env('app', 'lower_case_ok', '');
SELECT nx.set_env('app', '_UNDERSCORE', 'x');
SELECT sandbox, name, value, updated_by FROM nx.env_vars ORDER BY name;
SELECT nx.unset_env('app', 'lower_case_ok');
SELECT nx.unset_env('app', 'lower_case_ok');
SELECT name FROM nx.env_vars ORDER BY name;

\set VERBOSITY default
SELECT nx.set_env('app', 'PORT', '80');
SELECT nx.set_env('app', 'DATABASE_URL', 'x');
SELECT nx.set_env('app', 'PGPASSWORD', 'x');
SELECT nx.set_env('app', 'pghost', 'x');
SELECT nx.set_env('app', 'NX_SANDBOX', 'x');
SELECT nx.set_env('app', '1ABC', 'x');
SELECT nx.set_env('app', 'A-B', 'x');
SELECT nx.set_env('app', 'A=B', 'x');
SELECT nx.set_env('app', '', 'x');
SELECT nx.set_env('app', 'ÉTÉ', 'x');
SELECT nx.set_env('app', repeat('A', 129), 'x');
SELECT nx.set_env('app', 'OK', NULL);
SELECT nx.set_env('app', 'BIG', repeat('x', 32769));
SELECT nx.set_env('nope', 'OK', 'x');
SELECT nx.unset_env('app', 'PORT');
\set VERBOSITY terse
SELECT name FROM nx.env_vars ORDER BY name;
