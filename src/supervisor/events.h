/*
 * src/supervisor/events.h
 *	  Events the supervisor writes to nx.events (events.c).
 */
#ifndef NX_EVENTS_H
#define NX_EVENTS_H

#include "supervisor.h"

extern char *NxJsonObject1(const char *key, const char *value);
extern void NxQueueEvent(const char *action, const char *sandbox, const char *owner,
						 int64 deployment, const char *details_json);
extern void NxWriteQueuedEvents(void);

#endif							/* NX_EVENTS_H */
