/*-------------------------------------------------------------------------
 *
 * encoding.c
 *	  Text sent to providers is UTF-8, whatever the database's encoding.
 *
 * Requests are JSON, and JSON is UTF-8: one LATIN1 byte copied as it is
 * makes a request every provider rejects.  Persona values, column names,
 * the ad and the platform are converted from the server encoding on the way
 * out (personas.c, predict.c).  SQL_ASCII says nothing about its bytes, so
 * there valid UTF-8 passes through and any other byte above 0x7F becomes
 * the four characters \xHH: the same text in every run.
 *
 * On the way back, what providers send (model names, error messages) is
 * cut to printable ASCII by the parsers (provider_util.c), which is valid
 * in every server encoding.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"

#include "encoding.h"

static bool
is_ascii(const char *s)
{
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
		if (IS_HIGHBIT_SET(*p))
			return false;
	return true;
}

/* SQL_ASCII: keep well-formed UTF-8 sequences, spell out every other byte */
static char *
sql_ascii_to_utf8(const char *s)
{
	StringInfoData out;
	const unsigned char *p = (const unsigned char *) s;

	initStringInfo(&out);
	while (*p)
	{
		int			len = pg_utf_mblen(p);

		/* pg_utf8_islegal reads len bytes: never past the terminator */
		if (!IS_HIGHBIT_SET(*p) ||
			(strnlen((const char *) p, len) == len && pg_utf8_islegal(p, len)))
			appendBinaryStringInfo(&out, (const char *) p, len);
		else
		{
			appendStringInfo(&out, "\\x%02x", *p);
			len = 1;
		}
		p += len;
	}
	return out.data;
}

char *
ctr_to_utf8(const char *s)
{
	int			enc = GetDatabaseEncoding();

	if (enc == PG_UTF8 || is_ascii(s))
		return (char *) s;
	if (enc == PG_SQL_ASCII)
		return sql_ascii_to_utf8(s);
	/* a character UTF-8 lacks (WIN1252 0x81) is PostgreSQL's own error 22P05 */
	return pg_server_to_any(s, strlen(s), PG_UTF8);
}
