/*-------------------------------------------------------------------------
 *
 * keys.c
 *	  Where API keys come from, and what keeps them secret.
 *
 * A provider's key is, in this order: the setting ctr_dist.P_api_key, the
 * file named by ctr_dist.P_api_key_file (read at each call, so a key can be
 * rotated without a reload), the server's environment variable.
 *
 * The setting is the hard one, because PostgreSQL itself handles its value:
 *
 * - Preloaded, it is PGC_POSTMASTER: it can come only from postgresql.conf
 *	 or ALTER SYSTEM (whose value the check hook sees as PGC_S_FILE), and
 *	 takes effect at restart.  SET, ALTER ROLE/DATABASE SET (stored in
 *	 pg_db_role_setting, which every role can read) and connection options
 *	 are refused by PostgreSQL before any value is looked at, and a reload
 *	 logs only that the parameter "cannot be changed without restarting the
 *	 server": the "parameter ... changed to ..." line with the value, which
 *	 the postmaster writes for every other context, never happens.
 *
 * - Not preloaded, sessions that have not loaded ctr_dist hold any value as
 *	 a placeholder that every role may SHOW, and the postmaster logs it at
 *	 each reload.  Nothing here can run there, so the check hook refuses any
 *	 non-empty value wherever ctr_dist is loaded (ALTER SYSTEM, SET, ALTER
 *	 ROLE), and refuses to use one stored elsewhere: loading ctr_dist then
 *	 gives a WARNING that names the setting.
 *
 * No message carries a value: a failing check hook sets its own message,
 * never PostgreSQL's default 'invalid value for parameter "%s": "%s"'.
 * Every refusal of a key setting, ours or PostgreSQL's, names the setting;
 * the log hook keeps out of the server log the texts that come with such a
 * message or with a statement that names a key setting (STATEMENT, QUERY,
 * CONTEXT and the quoted token of a syntax error), since they may hold the
 * key that was refused.
 *
 * When preloaded, the postmaster takes the environment keys into its own
 * memory and out of its environment: backends and workers inherit the copy,
 * and programs the server starts (archive_command, COPY ... PROGRAM, ...)
 * see no key.  On Linux it also wipes them from the block the kernel shows
 * as /proc/<pid>/environ.  PostgreSQL prints its environment at DEBUG3
 * before it loads any library, so that much cannot be helped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "keys.h"

/* the providers before the mock are the ones with keys */
#define NUM_KEYED PROVIDER_MOCK
StaticAssertDecl(PROVIDER_MOCK == NUM_PROVIDERS - 1,
				 "every provider but the mock has a key");

static bool keys_preloaded = false;
static char *key_setting[NUM_KEYED];
static char *key_file[NUM_KEYED];

/* the environment keys, when the postmaster took them out of the environment */
static bool env_captured = false;
static char env_key[NUM_KEYED][CTR_KEY_MAX];

static emit_log_hook_type prev_emit_log_hook = NULL;

static bool
key_is_valid(const char *key)
{
	return strlen(key) < CTR_KEY_MAX && value_printable(key);
}

/* ---- the setting ---- */

static bool
check_api_key(ProviderId id, const char *value, GucSource source)
{
	const char *name = provider_ops(id)->name;

	if (value[0] == '\0')
		return true;
	if (!keys_preloaded)
	{
		GUC_check_errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE);
		GUC_check_errmsg("parameter \"ctr_dist.%s_api_key\" can be set only when ctr_dist is in shared_preload_libraries",
						 name);
		GUC_check_errdetail("Without preloading, PostgreSQL shows the value to every role in sessions that have not loaded ctr_dist. The value is not used.");
		GUC_check_errhint("Put the key in the file named by ctr_dist.%s_api_key_file, or in the server environment variable %s.",
						  name, provider_ops(id)->key_env);
		return false;
	}
	if (source != PGC_S_FILE && source != PGC_S_DEFAULT)
	{
		GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
		GUC_check_errmsg("parameter \"ctr_dist.%s_api_key\" can be set only in postgresql.conf or with ALTER SYSTEM",
						 name);
		if (source == PGC_S_ARGV)
			GUC_check_errdetail("Every user of the machine can read the server's command line. The value is not used.");
		return false;
	}
	if (!key_is_valid(value))
	{
		GUC_check_errmsg("invalid value for parameter \"ctr_dist.%s_api_key\"", name);
		GUC_check_errdetail("An API key is at most %d printable characters without spaces. The value is not shown.",
							CTR_KEY_MAX - 1);
		return false;
	}
	return true;
}

/* a check hook cannot tell which setting it checks: one for each */
static bool
check_openai_key(char **newval, void **extra, GucSource source)
{
	return check_api_key(PROVIDER_OPENAI, *newval, source);
}

static bool
check_deepseek_key(char **newval, void **extra, GucSource source)
{
	return check_api_key(PROVIDER_DEEPSEEK, *newval, source);
}

static bool
check_gemini_key(char **newval, void **extra, GucSource source)
{
	return check_api_key(PROVIDER_GEMINI, *newval, source);
}

static const GucStringCheckHook key_check_hooks[] = {
	[PROVIDER_OPENAI] = check_openai_key,
	[PROVIDER_DEEPSEEK] = check_deepseek_key,
	[PROVIDER_GEMINI] = check_gemini_key,
};

StaticAssertDecl(lengthof(key_check_hooks) == NUM_KEYED,
				 "a check hook for every provider's key setting");

/* ---- the key file ---- */

/* what went wrong with a key file, reported once it is closed */
typedef enum KeyFileProblem
{
	KEY_FILE_OK = 0,
	KEY_FILE_OPEN,
	KEY_FILE_STAT,
	KEY_FILE_READ,
	KEY_FILE_NOT_REGULAR,
	KEY_FILE_OWNER,
	KEY_FILE_MODE,
	KEY_FILE_EMPTY,
	KEY_FILE_INVALID
} KeyFileProblem;

static KeyFileProblem
load_key_file(const char *path, char *key, int *err)
{
	char		buf[CTR_KEY_MAX + 2];
	struct stat st;
	ssize_t		len = 0;
	KeyFileProblem problem = KEY_FILE_OK;
	int			fd;

	/*
	 * O_NONBLOCK: opening a FIFO for reading would otherwise wait, in a way
	 * no cancel or terminate ends, for a writer; it does not change how a
	 * regular file is read.  O_NOCTTY: a terminal is never made ours.  A
	 * transient file counts against the backend's limit of open files.
	 */
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
	{
		*err = errno;
		return KEY_FILE_OPEN;
	}
	/* the rules PostgreSQL applies to ssl_key_file, checked before reading */
	if (fstat(fd, &st) != 0)
	{
		*err = errno;
		problem = KEY_FILE_STAT;
	}
	else if (!S_ISREG(st.st_mode))
		problem = KEY_FILE_NOT_REGULAR;
	else if (st.st_uid != geteuid())
		problem = KEY_FILE_OWNER;
	else if (st.st_mode & (S_IRWXG | S_IRWXO))
		problem = KEY_FILE_MODE;
	else
	{
		while (len < (ssize_t) sizeof(buf))
		{
			ssize_t		n = read(fd, buf + len, sizeof(buf) - len);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
			{
				*err = errno;
				problem = KEY_FILE_READ;
			}
			if (n <= 0)
				break;
			len += n;
		}
	}
	CloseTransientFile(fd);

	if (problem == KEY_FILE_OK)
	{
		/* one trailing newline, as an editor or echo leaves it */
		if (len > 0 && buf[len - 1] == '\n')
			len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
		if (len == 0)
			problem = KEY_FILE_EMPTY;
		/* a NUL would end the key early and hide what follows it */
		else if (len >= CTR_KEY_MAX || memchr(buf, '\0', len) != NULL)
			problem = KEY_FILE_INVALID;
		else
		{
			buf[len] = '\0';
			if (key_is_valid(buf))
				strlcpy(key, buf, CTR_KEY_MAX);
			else
				problem = KEY_FILE_INVALID;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	return problem;
}

/*
 * The key in a provider's key file.  Errors name the file and the setting,
 * never what the file holds.
 */
static void
read_key_file(ProviderId id, const char *path, char *key)
{
	const char *name = provider_ops(id)->name;
	int			err = 0;
	KeyFileProblem problem = load_key_file(path, key, &err);

	if (problem == KEY_FILE_OK)
		return;
	errno = err;
	switch (problem)
	{
		case KEY_FILE_OPEN:
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open API key file \"%s\": %m", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file.", name)));
			break;
		case KEY_FILE_STAT:
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file.", name)));
			break;
		case KEY_FILE_READ:
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read API key file \"%s\": %m", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file.", name)));
			break;
		case KEY_FILE_NOT_REGULAR:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("API key file \"%s\" is not a regular file", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file.", name)));
			break;
		case KEY_FILE_OWNER:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("API key file \"%s\" must be owned by the database server's operating system user", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file.", name),
					 errhint("Give the file to the user the server runs as, with permissions u=rw (0600) or less.")));
			break;
		case KEY_FILE_MODE:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("API key file \"%s\" has group or world access", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file.", name),
					 errhint("An API key file must have permissions u=rw (0600) or less, e.g. chmod 600.")));
			break;
		case KEY_FILE_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("API key file \"%s\" is empty", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file.", name)));
			break;
		case KEY_FILE_INVALID:
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("API key file \"%s\" does not hold a valid API key", path),
					 errdetail("The file is named by ctr_dist.%s_api_key_file. It must hold one key of at most %d printable characters without spaces, and at most one newline after it; what it holds is not shown.",
							   name, CTR_KEY_MAX - 1)));
			break;
		case KEY_FILE_OK:
			break;
	}
}

/* ---- the environment ---- */

/* the variable, never its value */
static void
warn_invalid_env_key(const char *var)
{
	ereport(WARNING,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("server environment variable %s does not hold a valid API key, ignoring it", var),
			 errdetail("An API key is at most %d printable characters without spaces.",
					   CTR_KEY_MAX - 1)));
}

#ifdef __linux__
/*
 * Where the kernel finds what it shows as /proc/<pid>/environ: fields 50
 * and 51 (env_start, env_end) of /proc/self/stat, the 48th and 49th after
 * the ")" that ends the command name.
 */
static bool
initial_environ_bounds(uintptr_t *start, uintptr_t *end)
{
	char		buf[4096];
	ssize_t		len = 0;
	char	   *p;
	int			fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	while (len < (ssize_t) sizeof(buf) - 1)
	{
		ssize_t		n = read(fd, buf + len, sizeof(buf) - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return false;
	/* to the space before field 50; the one after ")" is before field 3 */
	for (int field = 3; field <= 50; field++)
	{
		if ((p = strchr(p + 1, ' ')) == NULL)
			return false;
	}
	return sscanf(p, " %" SCNuPTR " %" SCNuPTR, start, end) == 2 && *start < *end;
}

/* [start, end) lies in the process's initial stack, which it may write */
static bool
in_writable_stack(uintptr_t start, uintptr_t end)
{
	FILE	   *maps = fopen("/proc/self/maps", "r");
	char		line[1024];
	bool		ok = false;
	bool		line_start = true;

	if (maps == NULL)
		return false;
	while (!ok && fgets(line, sizeof(line), maps) != NULL)
	{
		uintptr_t	lo,
					hi;
		char		perms[5];
		bool		whole = strchr(line, '\n') != NULL;

		/* the tail of a line longer than the buffer is not a mapping */
		if (line_start &&
			sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %4s", &lo, &hi, perms) == 3 &&
			lo <= start && end <= hi)
			ok = perms[0] == 'r' && perms[1] == 'w' && strstr(line, "[stack]") != NULL;
		line_start = whole;
	}
	fclose(maps);
	return ok;
}

/*
 * PostgreSQL moves the environment to copies before any library loads
 * (save_ps_display_args), and unsetenv() takes a variable out of those;
 * but the strings the process started with stay where the kernel put them,
 * at the top of the initial stack, and the kernel shows that block to the
 * server's OS user (and so to roles that read server files) as
 * /proc/<pid>/environ, in the postmaster and in every process it forks.
 * Nothing refers to them any more: wipe the key variables there.  false
 * when that block cannot be found or is not the stack.
 */
static bool
wipe_initial_environ(void)
{
	uintptr_t	start,
				end;

	if (!initial_environ_bounds(&start, &end) || !in_writable_stack(start, end))
		return false;
	for (char *s = (char *) start; s < (char *) end;)
	{
		size_t		len = strnlen(s, (char *) end - s);

		for (int i = 0; i < NUM_KEYED; i++)
		{
			const char *var = provider_ops((ProviderId) i)->key_env;
			size_t		vlen = strlen(var);

			if (len > vlen && strncmp(s, var, vlen) == 0 && s[vlen] == '=')
				explicit_bzero(s, len);
		}
		s += len + 1;
	}
	return true;
}
#endif

/*
 * In the postmaster, when preloaded: keep the environment keys in memory
 * that every server process inherits, and take them out of the environment.
 * What getenv() returns belongs to the environment (setenv() may hand the
 * same string out again): it is copied, never written to.
 */
static void
capture_env_keys(void)
{
	bool		any = false;

	for (int i = 0; i < NUM_KEYED; i++)
	{
		const char *var = provider_ops((ProviderId) i)->key_env;
		const char *value = getenv(var);

		if (value == NULL)
			continue;
		any = true;
		if (key_is_valid(value))
			strlcpy(env_key[i], value, CTR_KEY_MAX);
		else if (value[0] != '\0')
			warn_invalid_env_key(var);
		unsetenv(var);
	}
	env_captured = true;
#ifdef __linux__
	if (any && !wipe_initial_environ())
		ereport(WARNING,
				(errmsg("could not remove the API keys from the server's initial environment"),
				 errdetail("The server's operating system user can read them in /proc/%d/environ.",
						   (int) getpid())));
#else
	(void) any;
#endif
}

static void
env_api_key(ProviderId id, char *key)
{
	const char *value;

	if (env_captured)
		value = env_key[id];
	else
	{
		value = getenv(provider_ops(id)->key_env);
		/* the postmaster said so at start when preloaded; here, at each call */
		if (value != NULL && value[0] != '\0' && !key_is_valid(value))
			warn_invalid_env_key(provider_ops(id)->key_env);
	}
	/* an environment value gets the same sanity rules as the setting */
	if (value != NULL && key_is_valid(value))
		strlcpy(key, value, CTR_KEY_MAX);
}

void
keys_get(ProviderId id, char *key)
{
	key[0] = '\0';
	Assert(id < NUM_KEYED);
	if (key_setting[id] != NULL && key_setting[id][0] != '\0')
		strlcpy(key, key_setting[id], CTR_KEY_MAX);
	else if (key_file[id] != NULL && key_file[id][0] != '\0')
		read_key_file(id, key_file[id], key);
	else
		env_api_key(id, key);
}

/* ---- copies ---- */

/*
 * "name: key" in one allocation of its exact size.  psprintf() would first
 * format into a guess and free that unwiped when the key does not fit.
 */
char *
keys_header(const char *name_colon_space, const char *key)
{
	size_t		nlen = strlen(name_colon_space);
	size_t		klen = strlen(key);
	char	   *header = palloc(nlen + klen + 1);

	memcpy(header, name_colon_space, nlen);
	memcpy(header + nlen, key, klen + 1);
	return header;
}

typedef struct KeyWipe
{
	MemoryContextCallback cb;
	ProviderConfig *configs;
	int			n;
} KeyWipe;

static void
wipe_keys(void *arg)
{
	KeyWipe    *w = (KeyWipe *) arg;

	for (int i = 0; i < w->n; i++)
		explicit_bzero(w->configs[i].api_key, sizeof(w->configs[i].api_key));
}

void
keys_wipe_at_reset(MemoryContext cxt, ProviderConfig *configs, int n)
{
	KeyWipe    *w = MemoryContextAllocZero(cxt, sizeof(KeyWipe));

	w->configs = configs;
	w->n = n;
	w->cb.func = wipe_keys;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(cxt, &w->cb);
}

/* ---- the server log ---- */

static inline bool
is_ident_char(char c)
{
	return isalnum((unsigned char) c) || c == '_' || c == '$' || IS_HIGHBIT_SET(c);
}

/*
 * Does s name one of ctr_dist's key settings, ctr_dist.P_api_key, in any
 * case, the parts quoted or not, spaces around the dot?  A key file setting
 * (..._api_key_file) holds a path, not a key: it does not count.
 */
static bool
names_key_setting(const char *s)
{
	for (const char *p = s; (p = strchr(p, '.')) != NULL; p++)
	{
		const char *q = p;
		const char *name = p + 1;

		/* ctr_dist before the dot */
		while (q > s && (isspace((unsigned char) q[-1]) || q[-1] == '"'))
			q--;
		if (q - s < 8 || pg_strncasecmp(q - 8, "ctr_dist", 8) != 0 ||
			(q - 8 > s && is_ident_char(q[-9])))
			continue;
		/* P_api_key after it */
		while (isspace((unsigned char) *name) || *name == '"')
			name++;
		for (int i = 0; i < NUM_KEYED; i++)
		{
			const char *provider = provider_ops((ProviderId) i)->name;
			size_t		plen = strlen(provider);

			if (pg_strncasecmp(name, provider, plen) == 0 &&
				pg_strncasecmp(name + plen, "_api_key", 8) == 0 &&
				!is_ident_char(name[plen + 8]))
				return true;
		}
	}
	return false;
}

/* will the server log show the statement after this message? */
static bool
statement_is_logged(const ErrorData *edata)
{
	int			elevel = edata->elevel;

	if (edata->hide_stmt || debug_query_string == NULL)
		return false;
	/* elog.c's is_log_level_output(), where LOG ranks above ERROR */
	if (elevel == LOG || elevel == LOG_SERVER_ONLY)
		return log_min_error_statement == LOG || log_min_error_statement <= ERROR;
	if (log_min_error_statement == LOG)
		return elevel >= FATAL;
	return elevel >= log_min_error_statement;
}

/*
 * A syntax error quotes the token it stopped at, "... at or near "%s"",
 * which here may be the key: keep the message, drop the token.  The
 * position (cursorpos, internalpos) still says where it is.
 */
static void
hide_near_token(ErrorData *edata)
{
	static const char english[] = "%s at or near \"%s\"";
	const char *format = _(english);
	const char *first = strstr(format, "%s");
	const char *second = first ? strstr(first + 2, "%s") : NULL;
	char	   *between;
	char	   *at;

	if (edata->message_id == NULL || strcmp(edata->message_id, english) != 0 ||
		second == NULL)
		return;
	/* what the translation puts between "syntax error" and the token */
	between = pnstrdup(first + 2, second - first - 2);
	at = strstr(edata->message, between);
	if (at != NULL)
		edata->message = psprintf("%.*s%s...%s", (int) (at - edata->message),
								  edata->message, between, second + 2);
	else
		edata->message = pstrdup(_("syntax error"));
	pfree(between);
}

/*
 * A message that names a key setting, or comes while a statement that names
 * one runs, may carry a key in the texts that come with it: the statement
 * ("STATEMENT:"), the query of a PL/pgSQL EXECUTE or SPI call ("QUERY:"),
 * the statement a function was running ("CONTEXT:"), the token of a syntax
 * error.  Every refusal of a key setting names the setting, whether the
 * name was written out or built at run time.  emit_log_hook is meant to
 * turn output off; hide_stmt and hide_ctx are what errhidestmt() and
 * errhidecontext() set, and what every log destination obeys.  The client
 * still gets the context, but neither the internal query nor the token:
 * the hook cannot change what the server logs alone.
 *
 * The hook runs only for messages the server log takes; the statement,
 * which can be long, is read only when something would show it.
 */
static void
keys_emit_log(ErrorData *edata)
{
	bool		sensitive;

	sensitive = (edata->message != NULL && names_key_setting(edata->message)) ||
		(edata->internalquery != NULL && names_key_setting(edata->internalquery)) ||
		(edata->context != NULL && names_key_setting(edata->context));
	if (!sensitive && debug_query_string != NULL &&
		(statement_is_logged(edata) || edata->internalquery != NULL ||
		 edata->context != NULL || edata->sqlerrcode == ERRCODE_SYNTAX_ERROR))
		sensitive = names_key_setting(debug_query_string);
	if (sensitive)
	{
		edata->hide_stmt = true;
		edata->hide_ctx = true;
		if (edata->internalquery != NULL)
		{
			pfree(edata->internalquery);
			edata->internalquery = NULL;
			edata->internalpos = 0;
		}
		if (edata->sqlerrcode == ERRCODE_SYNTAX_ERROR)
			hide_near_token(edata);
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
keys_init(void)
{
	keys_preloaded = process_shared_preload_libraries_in_progress;

	for (int i = 0; i < NUM_KEYED; i++)
	{
		const ProviderOps *ops = provider_ops((ProviderId) i);

		DefineCustomStringVariable(psprintf("ctr_dist.%s_api_key", ops->name),
								   psprintf("API key for %s; empty uses ctr_dist.%s_api_key_file, then the server environment variable %s.",
											ops->name, ops->name, ops->key_env),
								   keys_preloaded ?
								   "Only in postgresql.conf or with ALTER SYSTEM; read at server start." :
								   "Refused: ctr_dist is not in shared_preload_libraries.",
								   &key_setting[i], "",
								   keys_preloaded ? PGC_POSTMASTER : PGC_SUSET,
								   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
								   key_check_hooks[i], NULL, NULL);
		DefineCustomStringVariable(psprintf("ctr_dist.%s_api_key_file", ops->name),
								   psprintf("File holding the API key for %s, read at each call.", ops->name),
								   "Owned by the server's operating system user, permissions 0600 or less; one trailing newline is dropped.",
								   &key_file[i], "",
								   PGC_SUSET, GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL,
								   NULL, NULL, NULL);
	}

	if (keys_preloaded)
		capture_env_keys();

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = keys_emit_log;
}
