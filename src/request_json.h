/*-------------------------------------------------------------------------
 *
 * request_json.h
 *	  A request's JSON body, written straight into the memory the transfer
 *	  keeps it in (ProviderRequest.body_cxt): no cJSON tree, no print of it,
 *	  no copy.
 *
 * A body is nearly all prompt: tens of kilobytes, escaped in clean runs
 * (textscan.h) as they are written.  The rest is a handful of members,
 * each written by its builder in order, commas included.  Building a cJSON
 * tree for that cost a malloc per member and per key, a print that copied
 * the prompt again, and three strlens of it.
 *
 * The body is palloc'd: these may raise (out of memory), which the
 * transfer's release path cleans up after (transfer.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_REQUEST_JSON_H
#define CTR_REQUEST_JSON_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "provider.h"

/* Start the body in req->body_cxt (or the current context), with room for a prompt of text_len */
extern void json_body_begin(StringInfo out, const ProviderRequest *req, size_t text_len);

/* The body is done: it becomes req->body */
extern void json_body_end(StringInfo out, ProviderRequest *req);

/* s[0..len) as a JSON string literal, quotes included (as cJSON escapes) */
extern void json_put_string(StringInfo out, const char *s, size_t len);
extern void json_put_cstring(StringInfo out, const char *s);
extern void json_put_int(StringInfo out, int64 v);

/*
 * "model":..., "messages":[system, user] and, if temperature,
 * "temperature":0 -- the members every OpenAI-compatible body starts with,
 * without the braces
 */
extern void json_put_chat_messages(StringInfo out, const char *model, const char *system,
								   const char *user, size_t user_len, bool temperature);

#endif							/* CTR_REQUEST_JSON_H */
