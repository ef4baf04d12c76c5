/*-------------------------------------------------------------------------
 *
 * predict.h
 *	  ctr_predict() and its settings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_PREDICT_H
#define CTR_PREDICT_H

#include "postgres.h"
#include "fmgr.h"

#include "window.h"

extern void predict_define_settings(void);

/* what every call checks, shared by ctr_predict and the comparisons */
extern Oid	call_personas(FunctionCallInfo fcinfo, int argno);
extern int	call_batch_size(FunctionCallInfo fcinfo, int argno);
extern char *call_platform(FunctionCallInfo fcinfo, int argno);
extern CallState *call_start(FunctionCallInfo fcinfo, int providers_argno);
extern void call_run(CallState *cs, Oid relid, int batch_size);

#endif							/* CTR_PREDICT_H */
