/*-------------------------------------------------------------------------
 *
 * stubs.c
 *	  The backend symbols that src/provider_{openai,deepseek,gemini}.c
 *	  reference, so that those files link outside PostgreSQL.
 *
 * Only the request builders (ops->build) use them; the harnesses call only
 * ops->parse, which is pure C.  Every stub aborts with its name, so a
 * parse path that ever reaches backend code shows up as a crash with a
 * clear message instead of silently working here and not in the server.
 *
 * The prototypes come from the real headers, so a changed signature is a
 * compile error here.  Add a stub when a link fails with an undefined
 * backend symbol.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "lib/stringinfo.h"

#include "keys.h"
#include "prompt.h"
#include "provider_json.h"
#include "request_json.h"

/* port.h maps printf-family names to pg_* ones; write(2) avoids them */
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

/* src/prompt.c */
const char *
prompt_system(bool object_root, AnswerKind kind)
{
	stub_abort("prompt_system");
}

/* src/keys.c */
char *
keys_header(const char *name_colon_space, const char *key)
{
	stub_abort("keys_header");
}

/* src/request_json.c */
void
json_body_begin(StringInfo out, const ProviderRequest *req, size_t text_len)
{
	stub_abort("json_body_begin");
}

void
json_body_end(StringInfo out, ProviderRequest *req)
{
	stub_abort("json_body_end");
}

void
json_put_string(StringInfo out, const char *s, size_t len)
{
	stub_abort("json_put_string");
}

void
json_put_cstring(StringInfo out, const char *s)
{
	stub_abort("json_put_cstring");
}

void
json_put_int(StringInfo out, int64 v)
{
	stub_abort("json_put_int");
}

void
json_put_chat_messages(StringInfo out, const char *model, const char *system,
					   const char *user, size_t user_len, bool temperature)
{
	stub_abort("json_put_chat_messages");
}

/* lib/stringinfo.h (the model list request of provider_gemini.c) */
void
initStringInfo(StringInfo str)
{
	stub_abort("initStringInfo");
}

void
appendStringInfo(StringInfo str, const char *fmt,...)
{
	stub_abort("appendStringInfo");
}

void
appendStringInfoString(StringInfo str, const char *s)
{
	stub_abort("appendStringInfoString");
}

void
appendStringInfoChar(StringInfo str, char ch)
{
	stub_abort("appendStringInfoChar");
}

/* utils/palloc.h */
void *
palloc(Size size)
{
	stub_abort("palloc");
}

void *
palloc0(Size size)
{
	stub_abort("palloc0");
}

void
pfree(void *pointer)
{
	stub_abort("pfree");
}

char *
pstrdup(const char *in)
{
	stub_abort("pstrdup");
}

char *
psprintf(const char *fmt,...)
{
	stub_abort("psprintf");
}

/* utils/elog.h: ereport() and elog() */
bool
errstart(int elevel, const char *domain)
{
	stub_abort("errstart");
}

bool
errstart_cold(int elevel, const char *domain)
{
	stub_abort("errstart_cold");
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	stub_abort("errfinish");
}

int
errcode(int sqlerrcode)
{
	stub_abort("errcode");
}

int
errmsg(const char *fmt,...)
{
	stub_abort("errmsg");
}

int
errmsg_internal(const char *fmt,...)
{
	stub_abort("errmsg_internal");
}

int
errdetail(const char *fmt,...)
{
	stub_abort("errdetail");
}

int
errhint(const char *fmt,...)
{
	stub_abort("errhint");
}
