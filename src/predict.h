/*-------------------------------------------------------------------------
 *
 * predict.h
 *	  ctr_predict() and its settings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_PREDICT_H
#define CTR_PREDICT_H

extern void predict_define_settings(void);

#endif							/* CTR_PREDICT_H */
