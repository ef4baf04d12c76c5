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
 * never PostgreSQL's default 'invalid value for parameter "%s": "%s"'.  A
 * statement that mentions a key setting is not repeated in the server log
 * after its error (log_min_error_statement), since its text may hold a key.
 *
 * When preloaded, the postmaster takes the environment keys into its own
 * memory and out of its environment: backends and workers inherit the copy,
 * and programs the server starts (archive_command, COPY ... PROGRAM, ...)
 * see no key.  PostgreSQL prints its environment at DEBUG3 before it loads
 * any library, so that much cannot be helped.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "keys.h"

#define NUM_KEYED PROVIDER_MOCK

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
		GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
		GUC_check_errmsg("ctr_dist.%s_api_key can be set only when ctr_dist is in shared_preload_libraries",
						 name);
		GUC_check_errdetail("Without preloading, PostgreSQL shows the value to every role in sessions that have not loaded ctr_dist. The value is not used.");
		GUC_check_errhint("Put the key in the file named by ctr_dist.%s_api_key_file, or in the server environment variable %s.",
						  name, provider_ops(id)->key_env);
		return false;
	}
	if (source != PGC_S_FILE && source != PGC_S_DEFAULT)
	{
		GUC_check_errcode(ERRCODE_CANT_CHANGE_RUNTIME_PARAM);
		GUC_check_errmsg("ctr_dist.%s_api_key can be set only in postgresql.conf or with ALTER SYSTEM",
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

static GucStringCheckHook key_check_hooks[NUM_KEYED] = {
	[PROVIDER_OPENAI] = check_openai_key,
	[PROVIDER_DEEPSEEK] = check_deepseek_key,
	[PROVIDER_GEMINI] = check_gemini_key,
};

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

/*
 * In the postmaster, when preloaded: keep the environment keys in memory
 * that every server process inherits, and take them out of the environment.
 */
static void
capture_env_keys(void)
{
	for (int i = 0; i < NUM_KEYED; i++)
	{
		const char *var = provider_ops((ProviderId) i)->key_env;
		char	   *value = getenv(var);

		if (value == NULL)
			continue;
		if (key_is_valid(value))
			strlcpy(env_key[i], value, CTR_KEY_MAX);
		else if (value[0] != '\0')
			ereport(WARNING,
					(errmsg("server environment variable %s does not hold a valid API key, ignoring it", var),
					 errdetail("An API key is at most %d printable characters without spaces.",
							   CTR_KEY_MAX - 1)));
		explicit_bzero(value, strlen(value));
		unsetenv(var);
	}
	env_captured = true;
}

static void
env_api_key(ProviderId id, char *key)
{
	const char *value;

	value = env_captured ? env_key[id] : getenv(provider_ops(id)->key_env);
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

static bool
mentions_api_key(const char *s)
{
	for (; *s; s++)
		if (pg_strncasecmp(s, "api_key", 7) == 0)
			return true;
	return false;
}

/*
 * The text of a statement that mentions a key setting may hold a key: do
 * not repeat it after an error ("STATEMENT:  ...").  emit_log_hook is meant
 * to turn output off; hide_stmt is what errhidestmt() sets and what every
 * log destination obeys.
 */
static void
keys_emit_log(ErrorData *edata)
{
	if (!edata->hide_stmt && debug_query_string != NULL &&
		mentions_api_key(debug_query_string))
		edata->hide_stmt = true;
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
