/*-------------------------------------------------------------------------
 *
 * mock.c
 *	  A deterministic, attribute-driven stand-in for an LLM.
 *
 * It reads the same persona lines a model would, so it exercises the whole
 * pipeline, and it is plausible enough for demos and tests: the click
 * probability rises when the persona's interests or description share words
 * with the ad, depends on age by platform and on openness and extraversion,
 * and every ad gets its own base appeal.  The final draw hashes the ad, the
 * platform and the persona's fields, so a persona answers the same whatever
 * batch or position it is in.  It is never used in place of a provider
 * that failed.
 *
 *-------------------------------------------------------------------------
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE				/* strcasestr */
#endif
#include "mock.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MOCK_MAX_FIELDS 64
#define MOCK_MAX_WORDS 64

typedef struct MockField
{
	char		name[64];
	char	   *value;			/* unescaped, malloc'd */
} MockField;

typedef struct MockPersona
{
	int			nfields;
	MockField	fields[MOCK_MAX_FIELDS];
} MockPersona;

static uint64_t
fnv1a(uint64_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
	{
		h ^= (unsigned char) s[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

#define FNV_SEED UINT64_C(14695981039346656037)

/* Read one escaped field from *p up to an unescaped stop char; unescape */
static char *
read_field(const char **p, const char *end, char stop1, char stop2)
{
	char	   *out = malloc((size_t) (end - *p) + 1);
	size_t		len = 0;
	const char *s = *p;

	if (out == NULL)
		return NULL;
	while (s < end && *s != stop1 && *s != stop2)
	{
		if (*s == '\\' && s + 1 < end)
		{
			s++;
			switch (*s)
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
					if (s + 2 < end)
					{
						char		hex[3] = {s[1], s[2], 0};

						out[len++] = (char) strtol(hex, NULL, 16);
						s += 2;
					}
					break;
				default:
					out[len++] = *s;
			}
			s++;
		}
		else
			out[len++] = *s++;
	}
	out[len] = '\0';
	*p = s;
	return out;
}

static void
add_field(MockPersona *mp, const char *name, size_t namelen, char *value)
{
	MockField  *f;

	if (value == NULL || value[0] == '\0' || mp->nfields >= MOCK_MAX_FIELDS)
	{
		free(value);
		return;
	}
	f = &mp->fields[mp->nfields++];
	if (namelen >= sizeof(f->name))
		namelen = sizeof(f->name) - 1;
	memcpy(f->name, name, namelen);
	f->name[namelen] = '\0';
	f->value = value;
}

static void
free_persona(MockPersona *mp)
{
	for (int i = 0; i < mp->nfields; i++)
		free(mp->fields[i].value);
	mp->nfields = 0;
}

/* A persona line in header form: values separated by '|' */
static void
parse_header_row(MockPersona *mp, const char *p, const char *end,
				 char **names, int nnames)
{
	for (int c = 0; p <= end && c < nnames; c++)
	{
		char	   *v = read_field(&p, end, '|', '|');

		if (names[c] == NULL)
		{
			free(v);
			continue;
		}
		add_field(mp, names[c], strlen(names[c]), v);
		if (p >= end)
			break;
		p++;					/* the separator */
	}
}

/* A persona line in labelled form: "name: value; name: value" */
static void
parse_labelled_row(MockPersona *mp, const char *p, const char *end)
{
	while (p < end)
	{
		char	   *name = read_field(&p, end, ':', ';');
		char	   *value;

		if (name == NULL)
			return;
		if (p < end && *p == ':')
			p++;
		while (p < end && *p == ' ')
			p++;
		value = read_field(&p, end, ';', ';');
		add_field(mp, name, strlen(name), value);
		free(name);
		if (p < end)
			p++;				/* ';' */
		while (p < end && *p == ' ')
			p++;
	}
}

static double
unit_scale(const char *v)
{
	double		x = strtod(v, NULL);

	/* traits come as 0..1 or 1..5; map both to 0..1 */
	if (x > 1.0)
		x = (x - 1.0) / 4.0;
	return fmin(fmax(x, 0.0), 1.0);
}

static bool
name_has(const char *name, const char *what)
{
	return strcasestr(name, what) != NULL;
}

static bool
is_age(const char *name)
{
	size_t		len = strlen(name);

	return strcasecmp(name, "age") == 0 || strncasecmp(name, "age_", 4) == 0 ||
		(len > 4 && strcasecmp(name + len - 4, "_age") == 0);
}

/* ASCII letters and digits: the same words whatever the server's locale */
static bool
word_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Lower-case words of four letters or more; returns the count */
static int
split_words(const char *s, char words[][24], int max)
{
	int			n = 0;

	while (*s && n < max)
	{
		size_t		len = 0;

		while (*s && !word_char(*s))
			s++;
		while (word_char(s[len]))
			len++;
		if (len >= 4 && len < 24)
		{
			for (size_t i = 0; i < len; i++)
				words[n][i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + ('a' - 'A') : s[i];
			words[n][len] = '\0';
			n++;
		}
		s += len;
	}
	return n;
}

static double
persona_logit(const char *ad, const char *platform, const MockPersona *mp,
			  char ad_words[][24], int n_ad_words)
{
	double		logit;
	int			overlaps = 0;
	uint64_t	ad_hash = fnv1a(fnv1a(FNV_SEED, ad, strlen(ad)), platform, strlen(platform));
	bool		youth_platform = strcasecmp(platform, "tiktok") == 0 ||
		strcasecmp(platform, "instagram") == 0 || strcasecmp(platform, "x") == 0;
	bool		offer = strcasestr(ad, "free") || strcasestr(ad, "discount") ||
		strcasestr(ad, "% off") || strcasestr(ad, "sale") || strcasestr(ad, "trial");

	/* every ad has its own appeal: -2.2 .. -0.8 */
	logit = -2.2 + 1.4 * (double) (ad_hash % 1000) / 1000.0;
	if (offer)
		logit += 0.3;

	for (int i = 0; i < mp->nfields; i++)
	{
		const MockField *f = &mp->fields[i];

		if (is_age(f->name))
		{
			double		age = strtod(f->value, NULL);

			if (youth_platform)
				logit += age < 30 ? 0.5 : (age > 55 ? -0.6 : 0.0);
			else if (strcasecmp(platform, "facebook") == 0)
				logit += age > 35 ? 0.2 : -0.1;
			else if (strcasecmp(platform, "linkedin") == 0)
				logit += (age >= 25 && age <= 60) ? 0.3 : -0.5;
		}
		else if (name_has(f->name, "openness"))
			logit += 0.9 * (unit_scale(f->value) - 0.5);
		else if (name_has(f->name, "extraversion"))
			logit += 0.5 * (unit_scale(f->value) - 0.5);
		else if (name_has(f->name, "conscientiousness"))
			logit -= 0.4 * (unit_scale(f->value) - 0.5);
		else if (name_has(f->name, "neuroticism"))
			logit += 0.2 * (unit_scale(f->value) - 0.5);
		else
		{
			/* interests, occupation, description: words shared with the ad */
			char		words[MOCK_MAX_WORDS][24];
			int			nw = split_words(f->value, words, MOCK_MAX_WORDS);

			for (int w = 0; w < nw; w++)
				for (int a = 0; a < n_ad_words; a++)
					if (strncmp(words[w], ad_words[a], 5) == 0)
						overlaps++;
		}
	}
	logit += 0.7 * fmin(overlaps, 4);
	return logit;
}

static uint8_t
persona_answer(const char *ad, const char *platform, const MockPersona *mp,
			   char ad_words[][24], int n_ad_words, AnswerKind kind)
{
	uint64_t	h = fnv1a(FNV_SEED, ad, strlen(ad) + 1);
	double		p;
	double		u;

	h = fnv1a(h, platform, strlen(platform) + 1);
	for (int i = 0; i < mp->nfields; i++)
	{
		h = fnv1a(h, mp->fields[i].name, strlen(mp->fields[i].name) + 1);
		h = fnv1a(h, mp->fields[i].value, strlen(mp->fields[i].value) + 1);
	}
	p = 1.0 / (1.0 + exp(-persona_logit(ad, platform, mp, ad_words, n_ad_words)));
	if (kind == ANSWER_PROBABILITY)
		return (uint8_t) lround(100.0 * p);
	u = (double) (h >> 11) / (double) (UINT64_C(1) << 53);
	return u < p ? 1 : 0;
}

bool
mock_answer(const char *ad, const char *platform,
			const char *text, int n, AnswerKind kind, uint8_t *values)
{
	char		ad_words[MOCK_MAX_WORDS][24];
	int			n_ad_words = split_words(ad, ad_words, MOCK_MAX_WORDS);
	char	   *names[MOCK_MAX_FIELDS];
	int			nnames = 0;
	bool		header = false;
	int			k = 0;
	const char *line = text;

	while (line && *line)
	{
		const char *end = strchr(line, '\n');

		if (end == NULL)
			end = line + strlen(line);

		if (strncmp(line, "fields: ", 8) == 0 && !header)
		{
			const char *p = line + 8;

			header = true;
			while (p <= end && nnames < MOCK_MAX_FIELDS)
			{
				names[nnames++] = read_field(&p, end, '|', '|');
				if (p >= end)
					break;
				p++;
			}
		}
		else if (line[0] == '[')
		{
			char	   *after;
			long		num = strtol(line + 1, &after, 10);

			if (after < end && after[0] == ']' && after[1] == ' ' && num == k + 1 && k < n)
			{
				MockPersona mp;

				mp.nfields = 0;
				if (header)
					parse_header_row(&mp, after + 2, end, names, nnames);
				else
					parse_labelled_row(&mp, after + 2, end);
				values[k++] = persona_answer(ad, platform, &mp, ad_words, n_ad_words, kind);
				free_persona(&mp);
			}
		}
		line = *end ? end + 1 : NULL;
	}
	for (int i = 0; i < nnames; i++)
		free(names[i]);
	return k == n;
}
