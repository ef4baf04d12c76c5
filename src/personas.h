/*-------------------------------------------------------------------------
 *
 * personas.h
 *	  Read personas from any relation, in key order, a batch at a time.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_PERSONAS_H
#define CTR_PERSONAS_H

#include "postgres.h"
#include "fmgr.h"
#include "utils/portal.h"

typedef struct PersonaReader
{
	Portal		portal;
	int			ncols;			/* prompt columns: every column but the key */
	char	  **names;
	FmgrInfo   *outfuncs;		/* one per prompt column */
	char	   *kinds;			/* 'j' json, 'b' bool, ' ' other */
	bool	   *plain;			/* values never need escaping (numbers...) */
	struct FloatMemo **memos;	/* per column: float4/float8 texts seen, or NULL */
	int			memo_digits;	/* extra_float_digits the memos were made with */
	MemoryContext scratch;		/* one batch's rows while it is read: reset after
								 * each, a child of the context the reader opened in */
	int64		nread;
	bool		eof;
	char	   *relname;		/* qualified and quoted */
} PersonaReader;

/* One batch: the keys to emit and the text the model reads */
typedef struct PersonaBatch
{
	int64		first_ord;		/* ord of the first persona */
	int			n;
	char	  **keys;
	char	   *text;			/* call text + persona lines */
	int			text_len;
} PersonaBatch;

/* Both must run inside SPI_connect; the reader uses the caller's rights */
extern void persona_reader_open(PersonaReader *reader, Oid relid);
extern bool persona_reader_next(PersonaReader *reader, int batch_size,
								const char *call_text, PersonaBatch *batch);
extern void persona_reader_close(PersonaReader *reader);
extern int64 persona_reader_count(PersonaReader *reader);

/* Remove insignificant whitespace from json text (exposed for tests) */
extern char *json_compact(const char *json);

#endif							/* CTR_PERSONAS_H */
