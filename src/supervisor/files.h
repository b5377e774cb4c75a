/*
 * src/supervisor/files.h
 *	  The supervisor's files under $PGDATA/nx (files.c): blobs materialised
 *	  and verified, deployment logs, the state directories.
 */
#ifndef NX_FILES_H
#define NX_FILES_H

#include "supervisor.h"

#include "nodes/pg_list.h"

/* the blob's file, materialised and verified; NULL (with err) if it cannot be */
extern const char *NxBlobPath(const char *sha256, char *err, size_t errlen);
extern void NxBlobsRemoveUnwanted(List *wanted_sha256);

/* a deployment's log file */
typedef struct NxLogFile
{
	int			fd;
	int64		size;
	char		path[MAXPGPATH];
} NxLogFile;

extern bool NxLogOpen(NxLogFile *log, const char *key);
extern void NxLogAppend(NxLogFile *log, const char *data, size_t len);
extern void NxLogClose(NxLogFile *log);
extern void NxLogsRemoveUnwanted(List *wanted_ids);
extern char *NxReadFileTail(const char *path, int max_bytes, bool *cut);

/* paths under $PGDATA/nx */
extern void NxStateDirPath(char *path, const char *sub, const char *name);
extern void NxEnsureStateDirs(void);

#endif							/* NX_FILES_H */
