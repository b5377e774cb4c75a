-- 57_domains.sql: custom domains, and the list of every host the router
-- serves (for a TLS proxy in front that issues certificates on demand).

-- _normalise_domain returns a domain in the form nx.domains keeps (lower
-- case, no trailing dot), or raises with what is wrong with it.
CREATE FUNCTION nx._normalise_domain(domain text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	host text := lower(rtrim(btrim(domain), '.'));
	base text := lower(rtrim(nx._setting('nx.domain'), '.'));
BEGIN
	IF domain IS NULL THEN
		RAISE EXCEPTION 'domain must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF length(host) > 253
		OR host !~ '^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' THEN
		RAISE EXCEPTION 'invalid domain "%"', left(domain, 80)
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'A domain is two or more labels separated by dots; each label is 1-63 letters, digits or hyphens, not starting or ending with a hyphen; 253 characters at most.',
				HINT = 'Give the bare host name, such as ''app.example.com'': no scheme, port or path.';
	END IF;
	IF host = base OR right(host, length(base) + 1) = '.' || base THEN
		RAISE EXCEPTION 'domain "%" is under nx.domain (%)', host, base
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'Host names under nx.domain are the platform''s own production and preview hosts.',
				HINT = 'Every sandbox already has <sandbox>.' || base || ': see production_url in nx.sandbox_info.';
	END IF;
	RETURN host;
END
$$;

-- add_domain: route a domain to the sandbox's production deployment.
-- Adding a domain the sandbox already has changes nothing.
CREATE FUNCTION nx.add_domain(sandbox text, domain text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(add_domain.sandbox);
	host text := nx._normalise_domain(add_domain.domain);
	holder text;
BEGIN
	SELECT m.sandbox INTO holder FROM nx.domains m WHERE m.domain = host;
	IF holder = s.name THEN
		RETURN host;
	ELSIF holder IS NOT NULL THEN
		RAISE EXCEPTION 'domain "%" is already in use', host
			USING ERRCODE = 'unique_violation',
				HINT = 'A domain routes to one sandbox: remove it from the other one first (nx.remove_domain).';
	END IF;
	INSERT INTO nx.domains (domain, sandbox, created_by) VALUES (host, s.name, nx._caller());
	PERFORM nx._event('add_domain', s.name, NULL, s.owner, jsonb_build_object('domain', host));
	PERFORM nx._routes_changed();
	RETURN host;
END
$$;
COMMENT ON FUNCTION nx.add_domain(text, text) IS 'Route a custom domain to a sandbox''s production deployment';

-- remove_domain: stop routing a custom domain.  Another user's domain reads
-- as one that does not exist.
CREATE FUNCTION nx.remove_domain(domain text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	host text := lower(rtrim(btrim(remove_domain.domain), '.'));
	m nx.domains;
	s nx.sandboxes;
BEGIN
	IF remove_domain.domain IS NULL THEN
		RAISE EXCEPTION 'domain must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO m FROM nx.domains x WHERE x.domain = host;
	IF NOT FOUND OR NOT EXISTS (SELECT 1 FROM nx.sandboxes x
								WHERE x.name = m.sandbox AND nx._may_act(x.owner, nx._caller())) THEN
		RAISE EXCEPTION 'domain "%" does not exist', left(host, 80)
			USING ERRCODE = 'undefined_object',
				HINT = 'SELECT domain, sandbox FROM nx.domains lists yours.';
	END IF;
	s := nx._sandbox_for_update(m.sandbox);
	DELETE FROM nx.domains x WHERE x.domain = host;
	PERFORM nx._event('remove_domain', s.name, NULL, s.owner, jsonb_build_object('domain', host));
	PERFORM nx._routes_changed();
END
$$;
COMMENT ON FUNCTION nx.remove_domain(text) IS 'Stop routing a custom domain';

-- route_hosts: every host name the router serves, for a TLS proxy in front
-- that gets certificates only for known names (Caddy's on-demand TLS asks
-- the router's /.nx/ask endpoint, which answers from the same list).
CREATE FUNCTION nx.route_hosts() RETURNS TABLE (host text, kind text, sandbox text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.host, r.kind, r.sandbox FROM nx.routes r ORDER BY r.host $$;
COMMENT ON FUNCTION nx.route_hosts() IS 'Every host the router serves (for TLS certificate allow-lists); nx_admin and nx_router';
