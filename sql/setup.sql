-- setup: the extension, the roles every later test uses, and test binaries.
CREATE EXTENSION nx_sandbox;

-- what the extension made, and that it made the roles it needs
SELECT rolname FROM pg_roles WHERE rolname IN ('nx_admin', 'nx_user', 'nx_tenant') ORDER BY 1;
SELECT pg_has_role('nx_admin', 'nx_user', 'MEMBER') AS admin_is_user;
SELECT extversion FROM pg_extension WHERE extname = 'nx_sandbox';

CREATE ROLE alice LOGIN IN ROLE nx_user;
CREATE ROLE bob LOGIN IN ROLE nx_user;
CREATE ROLE carol LOGIN IN ROLE nx_admin;
CREATE ROLE mallory LOGIN;			-- not a platform user at all

-- /usr/bin/true is a small dynamic PIE on every Debian host
CREATE TABLE test_bin (name text PRIMARY KEY, bytes bytea NOT NULL);
INSERT INTO test_bin VALUES ('true', pg_read_binary_file('/usr/bin/true')),
							('false', pg_read_binary_file('/usr/bin/false'));
GRANT SELECT ON test_bin TO PUBLIC;

-- patch_u64 / patch_u16 write a little-endian integer into bytes at off.
CREATE FUNCTION patch_le(bytes bytea, off integer, width integer, val numeric) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	FOR i IN 0 .. width - 1 LOOP
		bytes := set_byte(bytes, off + i, (val % 256)::integer);
		val := trunc(val / 256);
	END LOOP;
	RETURN bytes;
END $$;
CREATE FUNCTION read_le(bytes bytea, off integer, width integer) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE v numeric := 0;
BEGIN
	FOR i IN REVERSE width - 1 .. 0 LOOP
		v := v * 256 + get_byte(bytes, off + i);
	END LOOP;
	RETURN v;
END $$;
-- phdr_offset: byte offset of the first program header of type p_type.
CREATE FUNCTION phdr_offset(bytes bytea, p_type integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	phoff integer := read_le(bytes, 32, 8);
	phnum integer := read_le(bytes, 56, 2);
BEGIN
	FOR i IN 0 .. phnum - 1 LOOP
		IF read_le(bytes, phoff + i * 56, 4) = p_type THEN
			RETURN phoff + i * 56;
		END IF;
	END LOOP;
	RETURN NULL;
END $$;
GRANT EXECUTE ON FUNCTION patch_le, read_le, phdr_offset TO PUBLIC;

-- error_of runs one statement and reports how it failed: its SQLSTATE,
-- message, detail and hint, with numbers of three or more digits masked
-- (they depend on the host's /usr/bin/true).  The statement's effects are
-- rolled back either way.
CREATE FUNCTION error_of(statement text,
						 OUT state text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE statement;
	state := 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
		detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
	message := regexp_replace(message, '[0-9]{3,}', 'N', 'g');
	detail := regexp_replace(detail, '[0-9]{3,}', 'N', 'g');
END $$;
GRANT EXECUTE ON FUNCTION error_of TO PUBLIC;
