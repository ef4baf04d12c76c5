/*-------------------------------------------------------------------------
 *
 * fuzz_prompt.c
 *	  libFuzzer harness for the batch text that src/prompt.c writes from
 *	  persona values (prompt_call_text + prompt_personas), read back by
 *	  mock_answer (src/mock.c).  Persona values, column names and the ad
 *	  are untrusted text; the README promises "one persona is always one
 *	  line and can never be read as two", and that the shorter of the two
 *	  forms is chosen from exact byte counts.
 *
 * Input: 2-byte header (fuzz_common.h): N (1..1000) personas, and the
 * number of columns (0..15) in the high nibble; then NUL-terminated
 * fields: the ad, the platform, the ncols column names, then the values
 * row by row.  A missing or empty value is NULL (personas.c turns empty
 * values into NULL); a missing or empty ad, platform or name gets a
 * default.  N is cut to the rows the input has values for, plus one row
 * of NULLs, so that random headers do not make every run 1000 rows long.
 *
 * Checks, besides ASan/UBSan/LeakSanitizer: the text is "Ad:", "Platform:",
 * "Personas: N", an optional "fields:" line and then exactly N lines
 * "[1] ".."[N] ", with no other control character than those newlines;
 * unescaping gives back the ad, the platform (when it is not one of the
 * known names), each name and each value, in its own field; the form
 * written is the shorter one (the header form on a tie), by the bytes
 * actually written; and mock_answer reads all N personas.
 *
 *-------------------------------------------------------------------------
 */
#include "fuzz_common.h"

#include <strings.h>

#include "mock.h"

char	   *fuzz_prompt_batch(const char *ad, const char *platform, int n, int ncols,
							  char *const *names, char *const *values, size_t *len);

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* bytes prompt_escape writes for s, by the README's rules */
static size_t
esc_len(const char *s)
{
	size_t		len = 0;

	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if (*p == '\\' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '|' || *p == ';')
			len += 2;
		else if (*p < 0x20 || *p == 0x7f)
			len += 4;
		else
			len += 1;
	}
	return len;
}

/* column names also escape ':' (a name ends at the first unescaped colon) */
static size_t
esc_len_name(const char *s)
{
	size_t		len = esc_len(s);

	for (; *s; s++)
		if (*s == ':')
			len++;
	return len;
}

/* undo the escaping of [p, end) */
static char *
unescape(const char *p, const char *end)
{
	char	   *out = malloc((size_t) (end - p) + 1);
	size_t		len = 0;

	while (p < end)
	{
		if (*p != '\\')
		{
			out[len++] = *p++;
			continue;
		}
		FUZZ_CHECK(p + 1 < end, "escape at the end of a field");
		p++;
		switch (*p)
		{
			case 'n':
				out[len++] = '\n';
				break;
			case 'r':
				out[len++] = '\r';
				break;
			case 't':
				out[len++] = '\t';
				break;
			case 'x':
				{
					char		hex[3] = {0, 0, 0};

					FUZZ_CHECK(p + 2 < end, "short \\x escape");
					hex[0] = p[1];
					hex[1] = p[2];
					out[len++] = (char) strtol(hex, NULL, 16);
					p += 2;
					break;
				}
			default:
				out[len++] = *p;
		}
		p++;
	}
	out[len] = '\0';
	return out;
}

/* next field of [*p, end) up to an unescaped sep; false when none is left */
static bool
next_field(const char **p, const char *end, char sep, const char **fstart, const char **fend)
{
	const char *s = *p;

	if (s > end)
		return false;
	*fstart = s;
	while (s < end && *s != sep)
		s += (*s == '\\' && s + 1 < end) ? 2 : 1;
	*fend = s;
	*p = s + 1;					/* past the separator, or past end */
	return true;
}

static void
check_field(const char *start, const char *end, const char *want, const char *what, int i, int c)
{
	char	   *got = unescape(start, end);

	FUZZ_CHECK(strcmp(got, want) == 0, "%s (persona %d, column %d) reads back as \"%s\", not \"%s\"",
			   what, i, c, got, want);
	free(got);
}

static const char *
token(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *s = *p;
	const uint8_t *nul;

	if (s >= end)
		return NULL;
	nul = memchr(s, '\0', (size_t) (end - s));
	if (nul == NULL)
		return NULL;			/* an unterminated last token is ignored */
	*p = nul + 1;
	return (const char *) s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const known[] = {"facebook", "instagram", "tiktok", "youtube",
	"linkedin", "x", "twitter", "amazon"};
	const uint8_t *p;
	const uint8_t *end = data + size;
	int			n;
	int			ncols;
	const char *ad;
	const char *platform;
	char	  **names;
	char	  **values;
	char		defname[16][8];
	char	   *text;
	size_t		len;
	const char *line;
	const char *eol;
	bool		header;
	bool		known_platform = false;
	size_t		h_size;
	size_t		l_size;
	size_t		written = 0;
	uint8_t    *clicks;
	bool		ok;

	if (size < FUZZ_HEADER_LEN)
		return 0;
	n = fuzz_n(data);
	ncols = fuzz_mode(data);
	p = data + FUZZ_HEADER_LEN;
	ad = token(&p, end);
	platform = token(&p, end);
	if (ad == NULL || ad[0] == '\0')
		ad = "Premium fitness subscription";
	if (platform == NULL || platform[0] == '\0')
		platform = "facebook";
	names = calloc((size_t) (ncols ? ncols : 1), sizeof(char *));
	for (int c = 0; c < ncols; c++)
	{
		const char *t = token(&p, end);

		snprintf(defname[c], sizeof(defname[c]), "c%d", c);
		names[c] = (char *) (t && t[0] ? t : defname[c]);
	}
	/* no more personas than the input has values for, plus one all-NULL */
	{
		const uint8_t *q = p;
		int			ntokens = 0;
		int			width = ncols ? ncols : 1;

		while (ntokens < 1000 * width && token(&q, end))
			ntokens++;
		if (n > 1 + (ntokens + width - 1) / width)
			n = 1 + (ntokens + width - 1) / width;
	}
	values = calloc((size_t) n * (ncols ? ncols : 1), sizeof(char *));
	for (int i = 0; i < n * ncols; i++)
	{
		const char *t = token(&p, end);

		values[i] = (char *) (t && t[0] ? t : NULL);
	}

	text = fuzz_prompt_batch(ad, platform, n, ncols, names, values, &len);

	/* one line per persona, no stray control characters */
	FUZZ_CHECK(strlen(text) == len, "NUL inside the batch text");
	FUZZ_CHECK(len > 0 && text[len - 1] == '\n', "batch text does not end with a newline");
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(text[i] == '\n' || ((unsigned char) text[i] >= 0x20 && text[i] != 0x7f),
				   "control character 0x%02x at byte %zu", (unsigned char) text[i], i);

	line = text;
	eol = strchr(line, '\n');
	FUZZ_CHECK(strncmp(line, "Ad: ", 4) == 0, "first line is not the ad");
	check_field(line + 4, eol, ad, "ad", 0, 0);

	line = eol + 1;
	eol = strchr(line, '\n');
	FUZZ_CHECK(eol && strncmp(line, "Platform: ", 10) == 0, "second line is not the platform");
	for (int i = 0; i < (int) (sizeof(known) / sizeof(known[0])); i++)
		known_platform |= strcasecmp(platform, known[i]) == 0;
	if (!known_platform)
	{
		FUZZ_CHECK(strncmp(line, "Platform: shown on ", 19) == 0 && eol[-1] == '.',
				   "unknown platform not \"shown on\"");
		check_field(line + 19, eol - 1, platform, "platform", 0, 0);
	}

	line = eol + 1;
	eol = strchr(line, '\n');
	{
		char		want[32];

		snprintf(want, sizeof(want), "Personas: %d", n);
		FUZZ_CHECK(eol && (size_t) (eol - line) == strlen(want) && strncmp(line, want, strlen(want)) == 0,
				   "third line is not \"%s\"", want);
	}

	line = eol + 1;
	header = strncmp(line, "fields: ", 8) == 0;
	if (header)
	{
		const char *f = line + 8;
		const char *fs;
		const char *fe;
		int			c = 0;

		eol = strchr(line, '\n');
		FUZZ_CHECK(ncols > 0, "header form without columns");
		while (next_field(&f, eol, '|', &fs, &fe))
		{
			FUZZ_CHECK(c < ncols, "more than %d names in the header", ncols);
			check_field(fs, fe, names[c], "name", 0, c);
			c++;
		}
		FUZZ_CHECK(c == ncols, "%d names in the header, not %d", c, ncols);
		written += (size_t) (eol - line) + 1;
		line = eol + 1;
	}

	for (int i = 0; i < n; i++)
	{
		char		prefix[16];
		size_t		plen = (size_t) snprintf(prefix, sizeof(prefix), "[%d] ", i + 1);
		char	  **row = values + (size_t) i * ncols;
		const char *r;
		const char *fs;
		const char *fe;
		int			last = -1;
		int			nonnull = 0;

		FUZZ_CHECK(*line != '\0', "only %d persona lines, not %d", i, n);
		eol = strchr(line, '\n');
		FUZZ_CHECK(strncmp(line, prefix, plen) == 0, "line %d does not start with \"%s\"", i + 1, prefix);
		r = line + plen;
		written += (size_t) (eol - r);
		for (int c = 0; c < ncols; c++)
			if (row[c])
			{
				last = c;
				nonnull++;
			}
		if (header)
		{
			int			c = 0;

			if (last < 0)
				FUZZ_CHECK(r == eol, "persona %d without values is not empty", i + 1);
			else
			{
				while (next_field(&r, eol, '|', &fs, &fe))
				{
					FUZZ_CHECK(c <= last, "persona %d has more than %d fields", i + 1, last + 1);
					check_field(fs, fe, row[c] ? row[c] : "", "value", i + 1, c);
					c++;
				}
				FUZZ_CHECK(c == last + 1, "persona %d has %d fields, not %d", i + 1, c, last + 1);
			}
		}
		else
		{
			int			c = -1;
			int			items = 0;

			if (nonnull == 0)
				FUZZ_CHECK(r == eol, "persona %d without values is not empty", i + 1);
			else
			{
				while (next_field(&r, eol, ';', &fs, &fe))
				{
					char	   *want;
					size_t		wlen;

					do
						c++;
					while (c < ncols && row[c] == NULL);
					FUZZ_CHECK(c < ncols, "persona %d has more than %d items", i + 1, nonnull);
					if (items > 0)
					{
						FUZZ_CHECK(fs < fe && *fs == ' ', "persona %d: item without \"; \"", i + 1);
						fs++;
					}
					wlen = strlen(names[c]) + 2 + strlen(row[c]);
					want = malloc(wlen + 1);
					snprintf(want, wlen + 1, "%s: %s", names[c], row[c]);
					check_field(fs, fe, want, "item", i + 1, c);
					free(want);
					items++;
				}
				FUZZ_CHECK(items == nonnull, "persona %d has %d items, not %d", i + 1, items, nonnull);
			}
		}
		line = eol + 1;
	}
	FUZZ_CHECK(*line == '\0', "text after persona %d: \"%.40s\"", n, line);

	/* the shorter form, by the bytes written (common parts left out) */
	h_size = strlen("fields: ") + 1;
	for (int c = 0; c < ncols; c++)
		h_size += esc_len_name(names[c]) + (c > 0);
	l_size = 0;
	for (int i = 0; i < n; i++)
	{
		int			last = -1;
		int			items = 0;

		for (int c = 0; c < ncols; c++)
		{
			const char *v = values[(size_t) i * ncols + c];

			if (v == NULL)
				continue;
			h_size += esc_len(v);
			l_size += esc_len_name(names[c]) + 2 + esc_len(v) + (items ? 2 : 0);
			last = c;
			items++;
		}
		if (last > 0)
			h_size += (size_t) last;
	}
	FUZZ_CHECK(header == (h_size <= l_size), "%s form written, header %zu bytes, labelled %zu",
			   header ? "header" : "labelled", h_size, l_size);
	FUZZ_CHECK(written == (header ? h_size : l_size), "%zu bytes written, %zu counted",
			   written, header ? h_size : l_size);

	/* and the mock reads every persona */
	clicks = malloc((size_t) n);
	ok = mock_answer(ad, platform, text, n, ANSWER_CLICK, clicks);
	FUZZ_CHECK(ok, "mock_answer could not read the %d personas", n);
	for (int i = 0; i < n; i++)
		FUZZ_CHECK(clicks[i] <= 1, "answer %d is %u", i + 1, clicks[i]);

	free(clicks);
	free(text);
	free(names);
	free(values);
	return 0;
}
