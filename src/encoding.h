/*-------------------------------------------------------------------------
 *
 * encoding.h
 *	  Text for providers is UTF-8, whatever the database's encoding.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_ENCODING_H
#define CTR_ENCODING_H

#include "postgres.h"

/*
 * s (in the server encoding) as valid UTF-8: s itself when it already is
 * (UTF-8 databases, ASCII text), else a palloc'd copy.  In SQL_ASCII, valid
 * UTF-8 passes and any other byte above 0x7F becomes the text \xHH.
 */
extern char *ctr_to_utf8(const char *s);

#endif							/* CTR_ENCODING_H */
