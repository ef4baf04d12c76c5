/*-------------------------------------------------------------------------
 *
 * personas.c
 *	  Read personas through an SPI cursor, with the caller's privileges.
 *
 * The key is the primary key when there is one, else a column named "id",
 * else the first column.  Rows come in key order so that runs repeat; when
 * the key is not known to be unique the whole row breaks ties.  Only one
 * batch of rows is in memory at a time.  Column names and values reach the
 * prompt in UTF-8 (encoding.c); the key is returned as the database has it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "tcop/pquery.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "compat.h"
#include "encoding.h"
#include "personas.h"
#include "prompt.h"

/* Columns of the persona key, in key order (attribute numbers) */
static List *
persona_key_columns(Relation rel, bool *unique)
{
	TupleDesc	desc = RelationGetDescr(rel);
	Oid			pkoid = InvalidOid;
	List	   *cols = NIL;

	if (rel->rd_rel->relkind == RELKIND_RELATION ||
		rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE ||
		rel->rd_rel->relkind == RELKIND_MATVIEW)
		pkoid = ctr_primary_key_index(rel);

	if (OidIsValid(pkoid))
	{
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pkoid));
		Form_pg_index idx;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for index %u", pkoid);
		idx = (Form_pg_index) GETSTRUCT(tup);
		for (int i = 0; i < idx->indnkeyatts; i++)
			cols = lappend_int(cols, idx->indkey.values[i]);
		ReleaseSysCache(tup);
		*unique = true;
		return cols;
	}

	*unique = false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), "id") == 0)
			return list_make1_int(att->attnum);
	}
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped)
			return list_make1_int(att->attnum);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("relation \"%s\" has no columns", RelationGetRelationName(rel))));
	return NIL;					/* keep compiler quiet */
}

/* "col" for ORDER BY, or "col::text" when the type has no ordering */
static void
append_order_item(StringInfo sql, Form_pg_attribute att)
{
	TypeCacheEntry *tc = lookup_type_cache(att->atttypid, TYPECACHE_LT_OPR);

	/* qualified: a bare name would sort by the output column (the key as text) */
	appendStringInfo(sql, "p.%s", quote_identifier(NameStr(att->attname)));
	if (!OidIsValid(tc->lt_opr))
		appendStringInfoString(sql, "::pg_catalog.text");
}

/*
 * Types whose text never holds a byte the prompt escapes (control
 * characters, backslash, '|', ';'), whatever DateStyle or locale: their
 * values skip the escaper.  Domains and everything else are escaped.
 */
static bool
plain_type(Oid type)
{
	switch (type)
	{
		case BOOLOID:
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case DATEOID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case UUIDOID:
			return true;
		default:
			return false;
	}
}

/*
 * The text of float4 and float8 values, remembered per column.  A persona
 * table holds few distinct trait values (0.73, 0.41, ...), and printing the
 * shortest exact decimal of one costs ~600 instructions, a lookup ~30.  The
 * text depends only on the value's bits and extra_float_digits.  A value
 * hashes to a pair of slots, which hold the last two values that hashed
 * there, the latest first: with one slot per value, two of 101 trait values
 * sharing a slot missed 18 % of lookups.  Only types passed by value: their
 * Datum is the bits (a by-reference Datum is an address, reused for other
 * values).
 */
#define FLOAT_MEMO_SLOTS 256	/* 128 pairs */

typedef struct FloatMemo
{
	Datum		value;
	uint8		len;			/* of text; 0 while the slot is empty */
	char		text[31];
} FloatMemo;

static void
float_memos_reset(PersonaReader *reader)
{
	for (int c = 0; c < reader->ncols; c++)
		if (reader->memos[c] != NULL)
			memset(reader->memos[c], 0, sizeof(FloatMemo) * FLOAT_MEMO_SLOTS);
	reader->memo_digits = extra_float_digits;
}

/* The pair of slots value hashes to */
static inline FloatMemo *
float_memo_pair(FloatMemo *memo, Datum value)
{
	uint64		h = (uint64) value * UINT64CONST(0x9E3779B97F4A7C15);

	return &memo[(h >> 57) * 2];
}

void
persona_reader_open(PersonaReader *reader, Oid relid)
{
	Relation	rel;
	TupleDesc	desc;
	List	   *keycols;
	bool		unique;
	StringInfoData sql;
	StringInfoData keyexpr;
	StringInfoData order;
	int			nestlevel;
	int			nkey;
	SPIPlanPtr	plan;
	int			c = 0;

	memset(reader, 0, sizeof(*reader));

	rel = relation_open(relid, AccessShareLock);
	desc = RelationGetDescr(rel);
	keycols = persona_key_columns(rel, &unique);
	nkey = list_length(keycols);

	initStringInfo(&keyexpr);
	initStringInfo(&order);
	if (nkey > 1)
		appendStringInfoString(&keyexpr, "ROW(");
	for (int i = 0; i < nkey; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, list_nth_int(keycols, i) - 1);

		if (i > 0)
		{
			appendStringInfoString(&keyexpr, ", ");
			appendStringInfoString(&order, ", ");
		}
		appendStringInfo(&keyexpr, "p.%s", quote_identifier(NameStr(att->attname)));
		append_order_item(&order, att);
	}
	if (nkey > 1)
		appendStringInfoChar(&keyexpr, ')');
	/* the whole row: p.* is the relation, never a column of that name */
	if (!unique)
		appendStringInfoString(&order, ", (p.*)::pg_catalog.text");

	reader->names = palloc(sizeof(char *) * desc->natts);
	reader->outfuncs = palloc(sizeof(FmgrInfo) * desc->natts);
	reader->kinds = palloc(desc->natts);
	reader->plain = palloc(sizeof(bool) * desc->natts);
	reader->memos = palloc0(sizeof(FloatMemo *) * desc->natts);
	reader->memo_digits = extra_float_digits;
	/* rows, rendered values and the growing text of one batch at a time */
	reader->scratch = AllocSetContextCreate(CurrentMemoryContext, "ctr_dist persona rows",
											ALLOCSET_DEFAULT_SIZES);

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT (%s)::pg_catalog.text", keyexpr.data);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Oid			outfunc;
		bool		varlena;

		if (att->attisdropped || list_member_int(keycols, att->attnum))
			continue;
		appendStringInfo(&sql, ", p.%s", quote_identifier(NameStr(att->attname)));
		reader->names[c] = ctr_to_utf8(pstrdup(NameStr(att->attname)));
		getTypeOutputInfo(att->atttypid, &outfunc, &varlena);
		fmgr_info(outfunc, &reader->outfuncs[c]);
		reader->kinds[c] = (att->atttypid == JSONOID || att->atttypid == JSONBOID) ? 'j' :
			(att->atttypid == BOOLOID) ? 'b' :
			(att->atttypid == TEXTOID || att->atttypid == VARCHAROID) ? 't' : ' ';
		reader->plain[c] = plain_type(att->atttypid);
		/* keyed on the Datum: by value only (not float8 on 32-bit builds) */
		if ((att->atttypid == FLOAT4OID || att->atttypid == FLOAT8OID) && att->attbyval)
			reader->memos[c] = palloc0(sizeof(FloatMemo) * FLOAT_MEMO_SLOTS);
		c++;
	}
	reader->ncols = c;
	reader->relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												 RelationGetRelationName(rel));
	appendStringInfo(&sql, " FROM %s AS p ORDER BY %s", reader->relname, order.data);
	/*
	 * The lock stays to the end of the transaction: the kinds, output
	 * functions and memos above are of these column types, which a
	 * concurrent ALTER COLUMN ... TYPE must not change under the cursor
	 */
	relation_close(rel, NoLock);

	/*
	 * Runs with the caller's privileges and row-level security.  Planned
	 * without JIT: past a million rows the plan's cost passes jit_above_cost,
	 * and compiling a projection whose rows cost microseconds took longer
	 * and ~10 MB more of this backend's memory than it ever saved.  The
	 * setting is back as it was when the cursor is open (or at the abort).
	 */
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("jit", "off", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	plan = SPI_prepare_cursor(sql.data, 0, NULL, CURSOR_OPT_NO_SCROLL);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare_cursor failed: %s", SPI_result_code_string(SPI_result));
	reader->portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);
	AtEOXact_GUC(true, nestlevel);
}

/* A copy of the len bytes at s, NUL-terminated, in the current context */
static inline char *
copy_text(const char *s, size_t len)
{
	char	   *copy = palloc(len + 1);

	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/*
 * A value as the model reads it: text, in UTF-8, and its strlen in *len;
 * NULL when empty
 */
static char *
render_value(PersonaReader *reader, int c, Datum value, size_t *len)
{
	char	   *s;
	char	   *u;
	FloatMemo  *slot = NULL;

	switch (reader->kinds[c])
	{
		case 'b':
			*len = DatumGetBool(value) ? 4 : 5;
			return copy_text(DatumGetBool(value) ? "true" : "false", *len);
		case 't':
			{
				/* text and varchar print as their bytes: no output function */
				text	   *t = DatumGetTextPP(value);

				*len = VARSIZE_ANY_EXHDR(t);
				if (*len == 0)
					return NULL;
				s = copy_text(VARDATA_ANY(t), *len);
				if ((Pointer) t != DatumGetPointer(value))
					pfree(t);
				u = ctr_to_utf8(s);
				if (u == s)
					return s;
				pfree(s);
				*len = strlen(u);
				return u;
			}
	}
	if (reader->memos[c] != NULL)
	{
		/* a function in the personas' query may change it while it runs */
		if (unlikely(reader->memo_digits != extra_float_digits))
			float_memos_reset(reader);
		slot = float_memo_pair(reader->memos[c], value);
		for (int k = 0; k < 2; k++)
			if (slot[k].len > 0 && slot[k].value == value)
			{
				*len = slot[k].len;
				return copy_text(slot[k].text, slot[k].len);
			}
	}
	s = OutputFunctionCall(&reader->outfuncs[c], value);
	if (reader->kinds[c] == 'j')
		s = json_compact(s);
	*len = strlen(s);
	if (slot != NULL && *len < sizeof(slot->text))
	{
		/* the latest first; ASCII, so the same in UTF-8 */
		slot[1] = slot[0];
		slot[0].value = value;
		slot[0].len = (uint8) *len;
		memcpy(slot[0].text, s, *len + 1);
	}
	if (*len == 0)
		return NULL;			/* empty says nothing: left out like NULL */
	u = ctr_to_utf8(s);
	if (u != s)
	{
		pfree(s);
		*len = strlen(u);
	}
	return u;
}

/*
 * Rows reach the reader through a DestReceiver of its own: rendered from
 * the executor's slot as they come, with no copy of each row into an SPI
 * tuple table and no second deform (which cost ~2,500 instructions per
 * real-sized persona).  The receiver's work lives in the reader's scratch
 * context; an ERROR in it unwinds like any in the executor.
 */
typedef struct RowReceiver
{
	DestReceiver pub;
	PersonaReader *reader;
	int			n;				/* rows received into this batch */
	int			max;
	char	  **keys;
	size_t		keys_size;
	char	  **values;			/* n x ncols */
	size_t	   *lens;			/* and their strlen */
} RowReceiver;

static bool
receive_row(TupleTableSlot *slot, DestReceiver *self)
{
	RowReceiver *rr = (RowReceiver *) self;
	PersonaReader *reader = rr->reader;
	MemoryContext old = MemoryContextSwitchTo(reader->scratch);
	char	  **row;
	int			i = rr->n;

	Assert(i < rr->max);
	Assert(slot->tts_tupleDescriptor->natts == reader->ncols + 1);
	slot_getallattrs(slot);
	rr->keys[i] = slot->tts_isnull[0] ? NULL : TextDatumGetCString(slot->tts_values[0]);
	if (rr->keys[i])
		rr->keys_size += strlen(rr->keys[i]) + 1;
	row = rr->values + (size_t) i * reader->ncols;
	for (int c = 0; c < reader->ncols; c++)
		row[c] = slot->tts_isnull[c + 1] ? NULL :
			render_value(reader, c, slot->tts_values[c + 1],
						 &rr->lens[(size_t) i * reader->ncols + c]);
	rr->n++;
	MemoryContextSwitchTo(old);
	return true;
}

static void
receiver_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

/* shutdown and destroy: the receiver lives on persona_reader_next's stack */
static void
receiver_noop(DestReceiver *self)
{
}

bool
persona_reader_next(PersonaReader *reader, int batch_size,
					const char *call_text, PersonaBatch *batch)
{
	RowReceiver rr;
	StringInfoData out;
	int			n;
	char	   *keybuf;
	MemoryContext batch_cxt = CurrentMemoryContext;

	if (reader->eof)
		return false;

	/*
	 * Everything but the keys and the text is scratch: the batch's context
	 * lives as long as the batch is in the window, and keeps only those two.
	 */
	memset(&rr, 0, sizeof(rr));
	rr.pub.receiveSlot = receive_row;
	rr.pub.rStartup = receiver_startup;
	rr.pub.rShutdown = receiver_noop;
	rr.pub.rDestroy = receiver_noop;
	rr.pub.mydest = DestNone;
	rr.reader = reader;
	rr.max = batch_size;
	rr.keys = MemoryContextAlloc(reader->scratch, sizeof(char *) * batch_size);
	rr.values = MemoryContextAllocZero(reader->scratch,
									   sizeof(char *) * (size_t) batch_size * Max(reader->ncols, 1));
	rr.lens = MemoryContextAlloc(reader->scratch,
								 sizeof(size_t) * (size_t) batch_size * Max(reader->ncols, 1));
	/* the portal's QueryDesc keeps a pointer to rr, read only in this call */
	(void) PortalRunFetch(reader->portal, FETCH_FORWARD, batch_size, &rr.pub);
	MemoryContextSwitchTo(batch_cxt);
	n = rr.n;
	if (n < batch_size)
		reader->eof = true;
	if (n == 0)
	{
		MemoryContextReset(reader->scratch);
		return false;
	}

	/* the text is written where the batch keeps it: no copy at the end */
	initStringInfo(&out);
	MemoryContextSwitchTo(reader->scratch);
	appendStringInfoString(&out, call_text);
	prompt_personas(&out, n, reader->ncols, reader->names, rr.values, rr.lens, reader->plain);

	/* the batch's: the keys in one chunk, the text in one of its size */
	MemoryContextSwitchTo(batch_cxt);
	batch->first_ord = reader->nread + 1;
	batch->n = n;
	batch->keys = palloc(sizeof(char *) * n + rr.keys_size);
	keybuf = (char *) (batch->keys + n);
	for (int i = 0; i < n; i++)
	{
		if (rr.keys[i] == NULL)
		{
			batch->keys[i] = NULL;
			continue;
		}
		batch->keys[i] = keybuf;
		strcpy(keybuf, rr.keys[i]);
		keybuf += strlen(rr.keys[i]) + 1;
	}
	batch->text = out.data;
	batch->text_len = out.len;
	MemoryContextReset(reader->scratch);

	reader->nread += n;
	return true;
}

void
persona_reader_close(PersonaReader *reader)
{
	if (reader->portal)
		SPI_cursor_close(reader->portal);
	reader->portal = NULL;
}

/* How many personas there are (for progress): one more scan, same rights */
int64
persona_reader_count(PersonaReader *reader)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *sql = psprintf("SELECT pg_catalog.count(*) FROM %s", reader->relname);
	bool		isnull;
	int64		n;

	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count the personas");
	n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	MemoryContextSwitchTo(cxt);
	SPI_freetuptable(SPI_tuptable);
	pfree(sql);
	return n;
}

char *
json_compact(const char *json)
{
	StringInfoData out;
	bool		in_string = false;
	bool		escaped = false;

	initStringInfo(&out);
	for (const char *p = json; *p; p++)
	{
		if (in_string)
		{
			if (escaped)
				escaped = false;
			else if (*p == '\\')
				escaped = true;
			else if (*p == '"')
				in_string = false;
		}
		else if (*p == '"')
			in_string = true;
		else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			continue;
		appendStringInfoChar(&out, *p);
	}
	return out.data;
}
