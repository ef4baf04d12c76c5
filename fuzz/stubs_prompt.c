/*-------------------------------------------------------------------------
 *
 * stubs_prompt.c
 *	  Just enough of the backend to run src/prompt.c and src/request_json.c
 *	  outside PostgreSQL, for fuzz_prompt and fuzz_json_string: palloc/pfree
 *	  on malloc, a real StringInfo, pg_strcasecmp and pg_ultoa_n.  The GUC
 *	  and elog symbols that prompt.c's setting code references abort, as in
 *	  stubs.c: the harnesses never define settings.
 *
 * fuzz_prompt_batch() (here) and fuzz_json_string() (stubs_json.c) are the
 * harnesses' way in: a harness itself cannot include postgres.h (port.h
 * renames the printf family).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <strings.h>
#include <unistd.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "prompt.h"

#undef vsnprintf

/* C11's _Noreturn: pg_attribute_noreturn() is gone in 18 */
static _Noreturn void
stub_abort(const char *name)
{
	static const char prefix[] = "fuzz stub: backend function called outside PostgreSQL: ";

	(void) !write(2, prefix, sizeof(prefix) - 1);
	(void) !write(2, name, strlen(name));
	(void) !write(2, "\n", 1);
	abort();
}

/*
 * utils/elog.h: a failed Assert() of src/ (an assert-enabled server's
 * headers define USE_ASSERT_CHECKING) is a finding: abort, as the backend does
 */
#if PG_VERSION_NUM >= 160000
void
ExceptionalCondition(const char *conditionName, const char *fileName, int lineNumber)
#else
void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
#endif
{
	stub_abort(conditionName);
}

/* utils/palloc.h, on malloc (palloc never returns NULL: abort instead) */
void *
palloc(Size size)
{
	void	   *p = malloc(size ? size : 1);

	if (p == NULL)
		stub_abort("palloc (out of memory)");
	return p;
}

void
pfree(void *pointer)
{
	free(pointer);
}

void *
repalloc(void *pointer, Size size)
{
	void	   *p = realloc(pointer, size ? size : 1);

	if (p == NULL)
		stub_abort("repalloc (out of memory)");
	return p;
}

/* lib/stringinfo.h: the same contract as src/common/stringinfo.c */
void
initStringInfo(StringInfo str)
{
	str->maxlen = 1024;
	str->data = palloc(str->maxlen);
	str->len = 0;
	str->data[0] = '\0';
	str->cursor = 0;
}

void
enlargeStringInfo(StringInfo str, int needed)
{
	int			newlen;

	if (needed < 0 || (Size) needed >= MaxAllocSize - (Size) str->len)
		stub_abort("enlargeStringInfo (request too large)");
	needed += str->len + 1;
	if (needed <= str->maxlen)
		return;
	newlen = 2 * str->maxlen;
	while (needed > newlen)
		newlen = 2 * newlen;
	str->data = repalloc(str->data, newlen);
	str->maxlen = newlen;
}

/* 16 made data a const void * */
#if PG_VERSION_NUM >= 160000
void
appendBinaryStringInfoNT(StringInfo str, const void *data, int datalen)
#else
void
appendBinaryStringInfoNT(StringInfo str, const char *data, int datalen)
#endif
{
	enlargeStringInfo(str, datalen);
	memcpy(str->data + str->len, data, datalen);
	str->len += datalen;
}

/* the same, terminated */
#if PG_VERSION_NUM >= 160000
void
appendBinaryStringInfo(StringInfo str, const void *data, int datalen)
#else
void
appendBinaryStringInfo(StringInfo str, const char *data, int datalen)
#endif
{
	appendBinaryStringInfoNT(str, data, datalen);
	str->data[str->len] = '\0';
}

/* request_json.c's json_body_begin (not called here) allocates in a context */
MemoryContext CurrentMemoryContext = NULL;

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	stub_abort("MemoryContextAlloc");
}

int
pg_lltoa(int64 value, char *a)
{
	stub_abort("pg_lltoa");
}

/* numutils.c's: the decimal digits of l, not terminated; returns how many */
int
pg_ultoa_n(uint32 l, char *a)
{
	char		digits[10];
	int			n = 0;

	do
	{
		digits[n++] = (char) ('0' + l % 10);
		l /= 10;
	} while (l != 0);
	for (int i = 0; i < n; i++)
		a[i] = digits[n - 1 - i];
	return n;
}

void
appendStringInfoString(StringInfo str, const char *s)
{
	appendBinaryStringInfo(str, s, strlen(s));
}

void
appendStringInfoChar(StringInfo str, char ch)
{
	appendBinaryStringInfo(str, &ch, 1);
}

void
appendStringInfo(StringInfo str, const char *fmt,...)
{
	va_list		args;
	int			needed;

	va_start(args, fmt);
	needed = vsnprintf(NULL, 0, fmt, args);
	va_end(args);
	enlargeStringInfo(str, needed);
	va_start(args, fmt);
	vsnprintf(str->data + str->len, needed + 1, fmt, args);
	va_end(args);
	str->len += needed;
}

/* port.h */
int
pg_strcasecmp(const char *s1, const char *s2)
{
	return strcasecmp(s1, s2);
}

/* utils/guc.h and utils/elog.h: setting definition only */
char	   *GUC_check_errdetail_string;

void
DefineCustomStringVariable(const char *name, const char *short_desc,
						   const char *long_desc, char **valueAddr,
						   const char *bootValue, GucContext context, int flags,
						   GucStringCheckHook check_hook,
						   GucStringAssignHook assign_hook,
						   GucShowHook show_hook)
{
	stub_abort("DefineCustomStringVariable");
}

void
pre_format_elog_string(int errnumber, const char *domain)
{
	stub_abort("pre_format_elog_string");
}

char *
format_elog_string(const char *fmt,...)
{
	stub_abort("format_elog_string");
}

/*
 * What personas.c sends for one batch: the call text, then the personas.
 * Returns a malloc'd C string and its length.
 */
char	   *fuzz_prompt_batch(const char *ad, const char *platform, int n, int ncols,
							  char *const *names, char *const *values, size_t *len);

char *
fuzz_prompt_batch(const char *ad, const char *platform, int n, int ncols,
				  char *const *names, char *const *values, size_t *len)
{
	StringInfoData out;
	char	   *call_text = prompt_call_text(ad, platform);

	bool	   *plain = malloc(sizeof(bool) * (ncols > 0 ? ncols : 1));

	/*
	 * A column is plain, as personas.c says of numbers and dates, only when
	 * none of its values holds a byte that would need escaping: digits and
	 * the few signs that numbers and dates use.
	 */
	for (int c = 0; c < ncols; c++)
	{
		plain[c] = true;
		for (int i = 0; i < n && plain[c]; i++)
		{
			const char *v = values[(size_t) i * ncols + c];

			if (v != NULL)
				plain[c] = *v != '\0' && strspn(v, "0123456789.-+:") == strlen(v);
		}
	}

	initStringInfo(&out);
	appendStringInfoString(&out, call_text);
	pfree(call_text);
	prompt_personas(&out, n, ncols, names, values, NULL, plain);
	free(plain);
	*len = (size_t) out.len;
	return out.data;
}

