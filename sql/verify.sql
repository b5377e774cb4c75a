-- verify: nx.verify_binary reports on any bytes and never raises for them.
-- (Expected output assumes an x86-64 Debian 12 host, like CI's.)
\set SHOW_CONTEXT never
SELECT ok, problems, hint, elf_class, machine, file_type, pie, linkage,
	   interpreter, interpreter_found, needed, missing_libraries,
	   size = octet_length(t.bytes) AS size_ok,
	   sha256 = encode(sha256(t.bytes), 'hex') AS sha256_ok, missing_versions
FROM test_bin t, nx.verify_binary(t.bytes) WHERE t.name = 'true';

-- the acceptance case: one byte, ok = false with a reason
SELECT ok, problems, hint FROM nx.verify_binary('\x00'::bytea);

-- each kind of bad input, one row each: (case, ok, first problem, hint)
CREATE TEMP TABLE cases AS
SELECT 'empty' AS name, ''::bytea AS bytes
UNION ALL SELECT 'script', convert_to(E'#!/bin/sh\necho hello\n', 'UTF8')
UNION ALL SELECT 'windows', convert_to('MZ', 'UTF8') || '\x9000030000000400'::bytea
UNION ALL SELECT 'text', convert_to('hello world', 'UTF8')
UNION ALL SELECT 'truncated header', substring(bytes from 1 for 30) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'truncated file', substring(bytes from 1 for octet_length(bytes) / 2) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'elf32', set_byte(bytes, 4, 1) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'big-endian', set_byte(bytes, 5, 2) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'aarch64', patch_le(bytes, 18, 2, 183) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'object file', patch_le(bytes, 16, 2, 1) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'phdrs outside', patch_le(bytes, 32, 8, 1099511627776) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'interp outside', patch_le(bytes, phdr_offset(bytes, 3) + 8, 8, 4294967296) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'dynamic outside', patch_le(bytes, phdr_offset(bytes, 2) + 8, 8, 4294967296) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'unknown interpreter',
	set_byte(bytes, position('ld-linux-x86-64.so.2'::bytea IN bytes) + 18, ascii('9')) FROM test_bin WHERE name = 'true'
UNION ALL SELECT 'missing library',
	set_byte(bytes, position('libc.so.6'::bytea IN bytes) + 1, ascii('q')) FROM test_bin WHERE name = 'true';

SELECT c.name, r.ok, regexp_replace(r.problems[1], '[0-9]{3,}', 'N', 'g') AS first_problem, r.hint
FROM cases c, nx.verify_binary(c.bytes) r ORDER BY c.name;

-- facts are still reported where the file is well-formed enough
SELECT c.name, r.elf_class, r.machine, r.linkage, r.interpreter, r.interpreter_found, r.missing_libraries,
	   r.missing_versions
FROM cases c, nx.verify_binary(c.bytes) r
WHERE c.name IN ('aarch64', 'unknown interpreter', 'missing library') ORDER BY c.name;

-- symbol versions: /usr/bin/true with its GLIBC_2.34 requirement renamed
-- GLIBC_2.99 (same length; its hash is left, so it matches nothing).
-- glibc's loader refuses it ("version `GLIBC_2.99' not found"), and so do
-- we, naming this host's newest GLIBC_ version (2.36 on Debian 12).
CREATE TEMP TABLE versioned AS
SELECT 'glibc 2.99' AS name,
	   overlay(bytes PLACING convert_to('GLIBC_2.99', 'UTF8')
			   FROM position(convert_to('GLIBC_2.34', 'UTF8') IN bytes) FOR 10) AS bytes
FROM test_bin WHERE name = 'true'
UNION ALL
-- the same version under a name libc does define, but with the hash of
-- GLIBC_2.34 kept: the loader compares hashes too
SELECT 'hash mismatch',
	   overlay(bytes PLACING convert_to('GLIBC_2.14', 'UTF8')
			   FROM position(convert_to('GLIBC_2.34', 'UTF8') IN bytes) FOR 10)
FROM test_bin WHERE name = 'true';
SELECT v.name, r.ok, r.problems, r.hint, r.missing_libraries, r.missing_versions
FROM versioned v, nx.verify_binary(v.bytes) r ORDER BY v.name;

-- NULL in, NULL out (STRICT)
SELECT nx.verify_binary(NULL) IS NULL AS null_in_null_out;
