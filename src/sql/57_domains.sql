-- 57_domains.sql: custom domains, and the list of every host the router
-- serves (for a TLS proxy in front that issues certificates on demand).
--
-- Adding a domain is only a claim.  A claimed domain routes nowhere, and
-- the router's /.nx/ask does not approve it for a certificate, until it is
-- verified: by a DNS TXT record _nx-verify.<domain> = nx-verify=<owner's
-- token>, which the supervisor looks for (src/supervisor/domains.c, with
-- the resolver of nx.dns_resolver), or by an nx_admin (approve_domain).
-- Another user of this host cannot forge either.  Several sandboxes may
-- claim one name; the first verified claim wins it, and nobody can take
-- it from there but its owner (remove_domain) or an nx_admin.

-- _normalise_domain returns a domain in the form nx.domains keeps (lower
-- case, no trailing dot), or raises with what is wrong with it: not a DNS
-- name, an IP address, a reserved name (localhost, .local, .invalid,
-- .arpa, .internal), or a host under nx.domain (the platform's own).
CREATE FUNCTION nx._normalise_domain(domain text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	host text := lower(rtrim(btrim(domain), '.'));
	base text := lower(rtrim(nx._setting('nx.domain'), '.'));
	tld text;
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
	tld := substring(host from '[^.]+$');
	IF tld ~ '^[0-9]+$' THEN
		-- no top-level domain is all digits (RFC 3696): this is an IPv4
		-- address (127.0.0.1, the host's own address...), which no user
		-- owns and the router must not hand to one
		RAISE EXCEPTION 'domain "%" is an IP address', host
			USING ERRCODE = 'invalid_parameter_value',
				DETAIL = 'Requests for an IP address (http://127.0.0.1/, the host''s own address) are not any one user''s to route.',
				HINT = 'Use a DNS name you control.';
	END IF;
	IF tld IN ('localhost', 'local', 'invalid', 'arpa', 'internal') THEN
		RAISE EXCEPTION 'domain "%" is reserved', host
			USING ERRCODE = 'reserved_name',
				DETAIL = format('Names under .%s are not public DNS names anyone can prove they control.', tld),
				HINT = 'Use a DNS name you control.';
	END IF;
	IF host = base OR right(host, length(base) + 1) = '.' || base THEN
		RAISE EXCEPTION 'domain "%" is under nx.domain (%)', host, base
			USING ERRCODE = 'reserved_name',
				DETAIL = 'Host names under nx.domain are the platform''s own production and preview hosts.',
				HINT = 'Every sandbox already has <sandbox>.' || base || ': see production_url in nx.sandbox_info.';
	END IF;
	RETURN host;
END
$$;

-- _domain_info_row returns one claim as nx.domain_info shows it.
CREATE FUNCTION nx._domain_info_row(host text, sandbox text) RETURNS nx.domain_info
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	result nx.domain_info;
BEGIN
	SELECT * INTO result FROM nx._domain_info_rows() i
	WHERE i.domain = host AND i.sandbox = _domain_info_row.sandbox;
	RETURN result;
END
$$;

-- add_domain: claim a domain for the sandbox.  It routes to the sandbox's
-- production deployment once verified (see the top of this file); the
-- result says which TXT record proves it.  Claiming a domain the sandbox
-- already claims changes nothing.
CREATE FUNCTION nx.add_domain(sandbox text, domain text) RETURNS nx.domain_info
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes := nx._sandbox_for_update(add_domain.sandbox);
	host text := nx._normalise_domain(add_domain.domain);
BEGIN
	IF EXISTS (SELECT 1 FROM nx.domains m WHERE m.domain = host AND m.sandbox = s.name) THEN
		RETURN nx._domain_info_row(host, s.name);
	END IF;
	IF EXISTS (SELECT 1 FROM nx.domains m WHERE m.domain = host AND m.verified_at IS NOT NULL) THEN
		RAISE EXCEPTION 'domain "%" is already in use', host
			USING ERRCODE = 'unique_violation',
				DETAIL = 'Another sandbox has proven that it controls this domain.',
				HINT = 'If the domain is yours, ask an administrator (nx.remove_domain as nx_admin).';
	END IF;
	-- the owner's token (created with its nx.owners row if need be)
	PERFORM nx._owner_for_update(s.owner);
	INSERT INTO nx.domains (domain, sandbox, created_by) VALUES (host, s.name, nx._caller());
	PERFORM nx._event('add_domain', s.name, NULL, s.owner, jsonb_build_object('domain', host));
	RETURN nx._domain_info_row(host, s.name);
END
$$;
COMMENT ON FUNCTION nx.add_domain(text, text) IS 'Claim a custom domain for a sandbox; it routes once a DNS TXT record (or an nx_admin) verifies it';

-- remove_domain: drop the caller's claims of a domain (and its route, if
-- verified): all of them, or only sandbox's.  A domain the caller has no
-- claim on reads as one that does not exist.  nx_admin may remove
-- anyone's.
CREATE FUNCTION nx.remove_domain(domain text, sandbox text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	host text := lower(rtrim(btrim(remove_domain.domain), '.'));
	m nx.domains;
	s nx.sandboxes;
	found_one boolean := false;
BEGIN
	IF remove_domain.domain IS NULL THEN
		RAISE EXCEPTION 'domain must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	FOR m IN SELECT * FROM nx.domains x
			 WHERE x.domain = host AND (remove_domain.sandbox IS NULL OR x.sandbox = remove_domain.sandbox)
			 ORDER BY x.sandbox LOOP
		CONTINUE WHEN NOT EXISTS (SELECT 1 FROM nx.sandboxes y
								  WHERE y.name = m.sandbox AND nx._may_act(y.owner, nx._caller()));
		s := nx._sandbox_for_update(m.sandbox);
		DELETE FROM nx.domains x WHERE x.domain = host AND x.sandbox = s.name;
		PERFORM nx._event('remove_domain', s.name, NULL, s.owner,
			jsonb_build_object('domain', host, 'was_verified', m.verified_at IS NOT NULL));
		found_one := true;
	END LOOP;
	IF NOT found_one THEN
		RAISE EXCEPTION 'domain "%" does not exist', left(host, 80)
			USING ERRCODE = 'undefined_object',
				HINT = 'nx.domain_info lists yours.';
	END IF;
	PERFORM nx._routes_changed();
END
$$;
COMMENT ON FUNCTION nx.remove_domain(text, text) IS 'Drop your claims of a custom domain (and stop routing it)';

-- check_domain: look for the domain's TXT record now rather than at the
-- next scheduled check (pending claims are checked every 30 s for their
-- first hour, every 5 minutes for their first day, then hourly); the
-- caller's claim of it, or sandbox's.
CREATE FUNCTION nx.check_domain(domain text, sandbox text DEFAULT NULL) RETURNS nx.domain_info
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	host text := lower(rtrim(btrim(check_domain.domain), '.'));
	claim nx.domains;
BEGIN
	SELECT m.* INTO claim FROM nx.domains m JOIN nx.sandboxes s ON s.name = m.sandbox
	WHERE m.domain = host AND nx._may_act(s.owner, nx._caller())
	  AND (check_domain.sandbox IS NULL OR m.sandbox = check_domain.sandbox)
	ORDER BY m.verified_at IS NULL, m.sandbox LIMIT 1;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'domain "%" does not exist', left(host, 80)
			USING ERRCODE = 'undefined_object',
				HINT = 'Claim it first with nx.add_domain(sandbox, domain).';
	END IF;
	PERFORM nx._sandbox_for_update(claim.sandbox);
	UPDATE nx.domains m SET checked_at = NULL
	WHERE m.domain = host AND m.sandbox = claim.sandbox AND m.verified_at IS NULL;
	PERFORM nx._wake_supervisor();
	RETURN nx._domain_info_row(host, claim.sandbox);
END
$$;
COMMENT ON FUNCTION nx.check_domain(text, text) IS 'Look for a claimed domain''s DNS TXT record now';

-- _verify_domain marks a claim verified (by 'dns' or 'admin:<role>'),
-- unless another claim of the name already is: returns whether it did.
CREATE FUNCTION nx._verify_domain(host text, sandbox text, verified_by text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	s nx.sandboxes;
BEGIN
	IF EXISTS (SELECT 1 FROM nx.domains m WHERE m.domain = host AND m.verified_at IS NOT NULL) THEN
		RETURN false;
	END IF;
	-- a claim its owner holds locked (an open transaction) is skipped, never
	-- waited for (I13): the supervisor's next check tries again
	UPDATE nx.domains m SET verified_at = now(), verified_by = _verify_domain.verified_by
	WHERE (m.domain, m.sandbox) = (SELECT x.domain, x.sandbox FROM nx.domains x
								   WHERE x.domain = host AND x.sandbox = _verify_domain.sandbox
									 AND x.verified_at IS NULL
								   FOR NO KEY UPDATE SKIP LOCKED);
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	SELECT * INTO s FROM nx.sandboxes x WHERE x.name = _verify_domain.sandbox;
	PERFORM nx._event('verify_domain', s.name, NULL, s.owner,
		jsonb_build_object('domain', host, 'verified_by', _verify_domain.verified_by));
	PERFORM nx._routes_changed();
	RETURN true;
END
$$;

-- approve_domain: an nx_admin verifies a claim by hand (when DNS cannot be
-- used, e.g. an internal name).
CREATE FUNCTION nx.approve_domain(domain text, sandbox text) RETURNS nx.domain_info
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET lock_timeout = '1s'
AS $$
DECLARE
	host text := lower(rtrim(btrim(approve_domain.domain), '.'));
BEGIN
	IF NOT pg_has_role(nx._caller(), 'nx_admin', 'MEMBER') THEN
		RAISE EXCEPTION 'permission denied to approve a domain'
			USING ERRCODE = 'insufficient_privilege',
				DETAIL = 'Only members of nx_admin verify domains by hand; anyone else proves control with a DNS TXT record.';
	END IF;
	PERFORM nx._sandbox_for_update(approve_domain.sandbox);
	IF NOT EXISTS (SELECT 1 FROM nx.domains m WHERE m.domain = host AND m.sandbox = approve_domain.sandbox) THEN
		RAISE EXCEPTION 'sandbox "%" has not claimed domain "%"', approve_domain.sandbox, left(host, 80)
			USING ERRCODE = 'undefined_object',
				HINT = 'Its owner claims it first with nx.add_domain(sandbox, domain).';
	END IF;
	-- the claim itself, locked: the supervisor's DNS check holds it for a
	-- moment while it records a result (and _verify_domain skips a row
	-- another transaction holds); 1 s at most (lock_timeout above)
	PERFORM 1 FROM nx.domains m WHERE m.domain = host AND m.sandbox = approve_domain.sandbox
	FOR NO KEY UPDATE;
	IF NOT nx._verify_domain(host, approve_domain.sandbox, 'admin:' || nx._caller())
	   AND NOT EXISTS (SELECT 1 FROM nx.domains m WHERE m.domain = host
					   AND m.sandbox = approve_domain.sandbox AND m.verified_at IS NOT NULL) THEN
		RAISE EXCEPTION 'domain "%" is already verified for another sandbox', host
			USING ERRCODE = 'unique_violation',
				HINT = 'Remove that claim first (nx.remove_domain).';
	END IF;
	RETURN nx._domain_info_row(host, approve_domain.sandbox);
END
$$;
COMMENT ON FUNCTION nx.approve_domain(text, text) IS 'Verify a claimed custom domain by hand (nx_admin)';

-- _domain_checks_due: the claims the supervisor should look up now (not
-- verified, the name not won by another claim, and not checked recently).
CREATE FUNCTION nx._domain_checks_due(max_rows integer)
RETURNS TABLE (domain text, sandbox text, txt_name text, txt_value text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT m.domain, m.sandbox, nx._domain_txt_name(m.domain), nx._domain_txt_value(s.owner)
	FROM nx.domains m JOIN nx.sandboxes s ON s.name = m.sandbox
	WHERE m.verified_at IS NULL
	  AND NOT EXISTS (SELECT 1 FROM nx.domains v WHERE v.domain = m.domain AND v.verified_at IS NOT NULL)
	  AND (m.checked_at IS NULL
		   OR m.checked_at < now() - CASE WHEN m.created_at > now() - interval '1 hour' THEN interval '30 seconds'
										 WHEN m.created_at > now() - interval '1 day' THEN interval '5 minutes'
										 ELSE interval '1 hour' END)
	ORDER BY m.checked_at NULLS FIRST, m.created_at
	LIMIT max_rows
$$;

-- _record_domain_check: what the supervisor's lookup found (txt_found: the
-- TXT record holds the owner's token), verifying the claim if so.
CREATE FUNCTION nx._record_domain_check(host text, sandbox text, txt_found boolean, result text) RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	UPDATE nx.domains m SET checked_at = now(), check_result = left(result, 200)
	WHERE (m.domain, m.sandbox) = (SELECT x.domain, x.sandbox FROM nx.domains x
								   WHERE x.domain = host AND x.sandbox = _record_domain_check.sandbox
								   FOR NO KEY UPDATE SKIP LOCKED);
	RETURN txt_found AND nx._verify_domain(host, _record_domain_check.sandbox, 'dns');
END
$$;

-- route_hosts: every host name the router serves, for a TLS proxy in front
-- that gets certificates only for known names (Caddy's on-demand TLS asks
-- the router's /.nx/ask endpoint, which answers from the same list).
-- Custom domains appear once verified.
CREATE FUNCTION nx.route_hosts() RETURNS TABLE (host text, kind text, sandbox text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT r.host, r.kind, r.sandbox FROM nx._all_routes() r ORDER BY r.host $$;
COMMENT ON FUNCTION nx.route_hosts() IS 'Every host the router serves (for TLS certificate allow-lists); nx_admin and nx_router';
