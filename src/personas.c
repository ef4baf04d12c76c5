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
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
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
			(att->atttypid == BOOLOID) ? 'b' : ' ';
		reader->plain[c] = plain_type(att->atttypid);
		c++;
	}
	reader->ncols = c;
	reader->relname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												 RelationGetRelationName(rel));
	appendStringInfo(&sql, " FROM %s AS p ORDER BY %s", reader->relname, order.data);
	relation_close(rel, AccessShareLock);

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

/* A value as the model reads it: text, in UTF-8; NULL when empty */
static char *
render_value(PersonaReader *reader, int c, Datum value)
{
	char	   *s;
	char	   *u;

	if (reader->kinds[c] == 'b')
		return pstrdup(DatumGetBool(value) ? "true" : "false");
	s = OutputFunctionCall(&reader->outfuncs[c], value);
	if (reader->kinds[c] == 'j')
		s = json_compact(s);
	if (s[0] == '\0')
		return NULL;			/* empty says nothing: left out like NULL */
	u = ctr_to_utf8(s);
	if (u != s)
		pfree(s);
	return u;
}

bool
persona_reader_next(PersonaReader *reader, int batch_size,
					const char *call_text, PersonaBatch *batch)
{
	SPITupleTable *tuptable;
	char	  **values;
	StringInfoData out;
	int			n;
	char	  **keys;
	size_t		keys_size = 0;
	char	   *keybuf;
	Datum	   *datums;
	bool	   *nulls;
	MemoryContext batch_cxt = CurrentMemoryContext;

	if (reader->eof)
		return false;
	SPI_cursor_fetch(reader->portal, true, batch_size);
	/* SPI returns in its own procedure context: the batch belongs to ours */
	MemoryContextSwitchTo(batch_cxt);
	n = (int) SPI_processed;
	if (n < batch_size)
		reader->eof = true;
	if (n == 0)
	{
		SPI_freetuptable(SPI_tuptable);
		return false;
	}
	tuptable = SPI_tuptable;

	/*
	 * Everything but the keys and the text is scratch: the batch's context
	 * lives as long as the batch is in the window, and keeps only those two.
	 */
	MemoryContextSwitchTo(reader->scratch);
	keys = palloc(sizeof(char *) * n);
	values = palloc0(sizeof(char *) * (size_t) n * Max(reader->ncols, 1));
	/* the key, then the columns: one deform per row, not one walk per column */
	datums = palloc(sizeof(Datum) * (reader->ncols + 1));
	nulls = palloc(sizeof(bool) * (reader->ncols + 1));
	Assert(tuptable->tupdesc->natts == reader->ncols + 1);
	for (int i = 0; i < n; i++)
	{
		heap_deform_tuple(tuptable->vals[i], tuptable->tupdesc, datums, nulls);
		keys[i] = nulls[0] ? NULL : TextDatumGetCString(datums[0]);
		if (keys[i])
			keys_size += strlen(keys[i]) + 1;
		for (int c = 0; c < reader->ncols; c++)
			if (!nulls[c + 1])
				values[(size_t) i * reader->ncols + c] = render_value(reader, c, datums[c + 1]);
	}
	SPI_freetuptable(tuptable);

	initStringInfo(&out);
	appendStringInfoString(&out, call_text);
	prompt_personas(&out, n, reader->ncols, reader->names, values, reader->plain);

	/* the batch's: the keys in one chunk, the text in one of its size */
	MemoryContextSwitchTo(batch_cxt);
	batch->first_ord = reader->nread + 1;
	batch->n = n;
	batch->keys = palloc(sizeof(char *) * n + keys_size);
	keybuf = (char *) (batch->keys + n);
	for (int i = 0; i < n; i++)
	{
		if (keys[i] == NULL)
		{
			batch->keys[i] = NULL;
			continue;
		}
		batch->keys[i] = keybuf;
		strcpy(keybuf, keys[i]);
		keybuf += strlen(keys[i]) + 1;
	}
	batch->text = palloc(out.len + 1);
	memcpy(batch->text, out.data, out.len + 1);
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
