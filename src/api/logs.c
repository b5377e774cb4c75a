/*
 * src/api/logs.c
 *	  nx._read_log: the last lines of a deployment's output, read from the
 *	  files the supervisor writes ($PGDATA/nx/logs/d<id>.log and, once
 *	  rotated, d<id>.log.1).  Called only through nx.logs, which checks
 *	  that the caller may act on the deployment's sandbox.
 *
 * Output is the app's: arbitrary bytes.  Lines are returned as text after
 * replacing anything that is not valid in the database encoding, so a
 * hostile app cannot make nx.logs fail for its owner.
 */
#include "compat.h"

#include <fcntl.h>
#include <unistd.h>

#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(nx_read_log);

#define NX_LOG_READ_MAX (4 * 1024 * 1024)	/* never read more than this */

/* AppendFile appends up to max bytes from the end of path to buf. */
static void
AppendFileTail(StringInfo buf, const char *path, int64 max)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t		end;
	char		chunk[65536];
	ssize_t		n;

	if (fd < 0)
		return;
	end = lseek(fd, 0, SEEK_END);
	lseek(fd, end > max ? end - max : 0, SEEK_SET);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		appendBinaryStringInfo(buf, chunk, n);
	close(fd);
}

/* SanitizedLine makes one line safe to return as text. */
static text *
SanitizedLine(const char *start, int len)
{
	StringInfoData out;
	int			i = 0;

	initStringInfo(&out);
	while (i < len)
	{
		int			clen = pg_encoding_mblen(GetDatabaseEncoding(), start + i);

		if (clen > 0 && i + clen <= len &&
			pg_verify_mbstr(GetDatabaseEncoding(), start + i, clen, true) &&
			(clen > 1 || (unsigned char) start[i] >= 0x20 || start[i] == '\t'))
		{
			appendBinaryStringInfo(&out, start + i, clen);
			i += clen;
		}
		else
		{
			appendStringInfoChar(&out, '?');
			i++;
		}
	}
	return cstring_to_text_with_len(out.data, out.len);
}

/*
 * nx_read_log(deployment bigint, lines int) returns the last lines of the
 * deployment's log, oldest first.
 */
Datum
nx_read_log(PG_FUNCTION_ARGS)
{
	int64		deployment = PG_GETARG_INT64(0);
	int32		lines = PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char		path[MAXPGPATH];
	StringInfoData buf;
	int			start,
				count = 0;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC | MAT_SRF_BLESS);
	initStringInfo(&buf);
	snprintf(path, sizeof(path), "%s/nx/logs/d" INT64_FORMAT ".log.1", DataDir, deployment);
	AppendFileTail(&buf, path, NX_LOG_READ_MAX / 2);
	path[strlen(path) - 2] = '\0';	/* drop ".1" */
	AppendFileTail(&buf, path, NX_LOG_READ_MAX / 2);

	/* walk back over lines lines (a final line without newline counts) */
	start = buf.len;
	if (start > 0 && buf.data[start - 1] == '\n')
		start--;
	while (start > 0 && count < lines)
	{
		start--;
		if (buf.data[start] == '\n')
			count++;
	}
	if (count == lines)
		start++;

	while (start < buf.len)
	{
		char	   *nl = memchr(buf.data + start, '\n', buf.len - start);
		int			len = nl ? (int) (nl - (buf.data + start)) : buf.len - start;
		Datum		value = PointerGetDatum(SanitizedLine(buf.data + start, len));
		bool		isnull = false;

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
		start += len + 1;
	}
	return (Datum) 0;
}
