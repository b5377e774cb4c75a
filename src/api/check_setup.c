/*
 * src/api/check_setup.c
 *	  nx._host_checks: the host prerequisites of running sandboxes, as rows
 *	  (nx.check_setup adds the checks SQL can make itself).  The checks are
 *	  the supervisor's own (src/supervisor/hostsetup.c), so what this says is
 *	  what the supervisor acts on.
 */
#include "compat.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "supervisor/hostsetup.h"

PG_FUNCTION_INFO_V1(nx_host_checks);

/* nx_host_checks returns (check_name, ok, required, detail, fix) rows. */
Datum
nx_host_checks(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	NxSetupReport report;

	InitMaterializedSRF(fcinfo, 0);
	NxSetupRun(&report, NULL);
	for (int i = 0; i < report.n; i++)
	{
		NxSetupCheck *c = &report.checks[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, c->ok};

		values[0] = CStringGetTextDatum(c->name);
		values[1] = BoolGetDatum(c->ok);
		values[2] = BoolGetDatum(c->required);
		values[3] = CStringGetTextDatum(c->detail);
		values[4] = CStringGetTextDatum(c->fix);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
