/*
 * control/nx/nx.h
 *	  The nx command-line client: what the command files share.
 *
 * Glossary:
 *	  command	one verb of the client (push, status, ...), one function
 *				cmd_<verb>(argc, argv) where argv[0] is the verb.
 *	  usage error  wrong arguments: exit 1, before anything is done.
 *	  the error	one failure per run, printed once on the way out
 *				(errors.c): text, or one JSON object under --json.
 */
#ifndef NX_CLI_H
#define NX_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <libpq-fe.h>

#ifndef NX_VERSION
#define NX_VERSION "unknown"
#endif

/* exit codes (docs/cli.md) */
#define NX_EXIT_OK 0
#define NX_EXIT_USAGE 1
#define NX_EXIT_SERVER 2
#define NX_EXIT_REFUSED 3
#define NX_EXIT_NOT_READY 4

/* type oids the output code needs */
#define NX_BOOLOID 16
#define NX_BYTEAOID 17
#define NX_INT8OID 20
#define NX_INT2OID 21
#define NX_INT4OID 23
#define NX_OIDOID 26
#define NX_JSONOID 114
#define NX_FLOAT4OID 700
#define NX_FLOAT8OID 701
#define NX_NUMERICOID 1700
#define NX_JSONBOID 3802

/* options that every command accepts, and what the error path needs */
typedef struct NxGlobal
{
	const char *connstr;		/* -d CONNSTR, or NULL: libpq's defaults */
	bool		json;			/* --json */
	bool		json_errors;	/* --json anywhere before "--": errors as JSON
								 * even when a usage error comes first */
	const char *sandbox;		/* the sandbox the command acts on (hints) */
} NxGlobal;

extern NxGlobal nx_global;

/* main.c */
extern void nx_print_command_help(FILE *out, const char *command);
extern const char *nx_command_usage(const char *command);

/* errors.c: the one error of a run (see there) */
extern void nx_error(const char *fmt,...) __attribute__((format(printf, 1, 2)));
extern void nx_error_sqlstate(const char *sqlstate);
extern void nx_detail(const char *label, const char *text);
extern void nx_error_log(const char *title, const char *line);
extern bool nx_error_pending(void);
extern void nx_error_flush(int exit_code);
extern void nx_exit(int code) __attribute__((noreturn));
extern void nx_usage_error(const char *command, const char *fmt,...)
			__attribute__((format(printf, 2, 3), noreturn));
extern void nx_usage_error_hint(const char *command, const char *suggestion,
								const char *fmt,...)
			__attribute__((format(printf, 3, 4), noreturn));

/* hints.c */
extern char *nx_cli_hint(const char *sqlstate, const char *message,
						 const char *server_hint);
extern void nx_report_server_error(PGconn *conn, const char *sqlstate,
								   const char *message, const char *detail,
								   const char *server_hint);

/* suggest.c */
extern char *nx_suggest(const char *word, const char *const *candidates);
extern void nx_unknown_word(const char *command, const char *what, const char *word,
							const char *const *candidates, const char *listing)
			__attribute__((noreturn));

/* output.c */
extern void nx_json_string(FILE *out, const char *s);
extern void nx_json_value(FILE *out, const PGresult *res, int row, int col);
extern void nx_json_row(FILE *out, const PGresult *res, int row);
extern void nx_json_rows(FILE *out, const PGresult *res);
extern void nx_print_table(FILE *out, const PGresult *res,
						   const char *const *columns, int ncolumns);
extern void nx_print_deployment_row(const PGresult *res, const char *verb);

/* options.c */
extern bool nx_opt_value(int argc, char **argv, int *i, const char *command,
						 const char *name, const char **value);
extern bool nx_opt_flag(char **argv, int i, const char *name);
extern bool nx_opt_global(int argc, char **argv, int *i, const char *command);
extern void nx_reject_option(const char *command, const char *arg)
			__attribute__((noreturn));
extern int	nx_parse_positional(int argc, char **argv, const char **pos, int max,
								bool *force);
extern long long nx_parse_int(const char *command, const char *what,
							  const char *text, long long min, long long max);
extern void nx_check_deployment_id(const char *command, const char *text);
extern double nx_parse_seconds(const char *command, const char *what, const char *text);

/* limits.c: the per-sandbox limits, as nx create and nx alter take them */
#define NX_NLIMITS 9
typedef enum NxApplies
{
	NX_AT_NEXT_START,			/* at each deployment's next start */
	NX_AT_ONCE,
	NX_AT_NEXT_PUSH				/* to deployments pushed from now on */
} NxApplies;

typedef struct NxLimit
{
	const char *option;			/* "--memory" */
	const char *alias;			/* another spelling, or NULL */
	const char *column;			/* argument of nx.alter_sandbox, column of
								 * nx.sandbox_info */
	const char *sqltype;		/* text, integer or interval */
	NxApplies	applies;		/* when a new value takes effect */
	const char *label;			/* "memory", for messages */
} NxLimit;

extern const NxLimit nx_limits[NX_NLIMITS];
extern bool nx_opt_limit(int argc, char **argv, int *i, const char *command,
						 const char **values);
extern void nx_limits_sql_args(char *buf, size_t size, int first_param);

/* conn.c (and progress.c: nx_exec_with_progress) */
extern PGconn *nx_connect(void);
extern void nx_report_pg_error(PGconn *conn, const PGresult *res);
extern PGresult *nx_query(PGconn *conn, const char *sql, int nparams,
						  const char *const *values);
extern PGresult *nx_query_typed(PGconn *conn, const char *sql, int nparams,
								const unsigned int *types,
								const char *const *values, const int *lengths,
								const int *formats);
extern PGresult *nx_exec_with_progress(PGconn *conn, const char *sql, int nparams,
									   const unsigned int *types,
									   const char *const *values,
									   const int *lengths, const int *formats,
									   size_t total);
extern void nx_require_sandbox(PGconn *conn, const char *sandbox);
extern void nx_finish(PGconn *conn, PGresult *res);
extern void nx_sleep_ms(int ms);
extern double nx_now(void);

/* commands */
extern int	cmd_push(int argc, char **argv);
extern int	cmd_verify(int argc, char **argv);
extern int	cmd_promote(int argc, char **argv);
extern int	cmd_rollback(int argc, char **argv);
extern int	cmd_start(int argc, char **argv);	/* start, stop, restart */
extern int	cmd_remove(int argc, char **argv);
extern int	cmd_ls(int argc, char **argv);
extern int	cmd_info(int argc, char **argv);
extern int	cmd_status(int argc, char **argv);
extern int	cmd_logs(int argc, char **argv);
extern int	cmd_env(int argc, char **argv);
extern int	cmd_create(int argc, char **argv);
extern int	cmd_alter(int argc, char **argv);
extern int	cmd_destroy(int argc, char **argv);
extern int	cmd_domains(int argc, char **argv);
extern int	cmd_db(int argc, char **argv);

/* restore_list.c: what nx db restore restores of an archive */
extern char *nx_restore_list(const char *archive);

/* wait.c, deploy.c: waiting for a deployment, promoting one */
extern PGresult *nx_status_row(PGconn *conn, const char *deployment);
extern int	nx_wait_deployment(PGconn *conn, const char *sandbox, const char *deployment,
							   double timeout, bool production);
extern int	nx_promote_deployment(PGconn *conn, const char *sandbox, const char *deployment,
								  bool force, bool wait, double timeout, PGresult **result);

/* push.c, used by the verify command */
extern bool nx_read_file(const char *path, unsigned char **buf, size_t *len);

#endif							/* NX_CLI_H */
