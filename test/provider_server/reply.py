"""
Reply, what goes back on the wire (status, body, headers, transport mode and what
it counts for the stats), the HTML error pages of the front ends, and the
rate-limit signals and error shaping that any provider's error may carry.
"""

import email.utils
import json
import math
import time

from .wire import jdump


class Reply:
    """A response to send, plus what it means for the stats."""

    def __init__(self, status, body=b"", headers=None, content_type="application/json"):
        self.status = status
        self.body = body if isinstance(body, bytes) else jdump(body)
        self.headers = list(headers or [])
        self.content_type = content_type
        self.transport = "normal"      # normal | reset | hang | slow | keepalive
        self.tparams = {}
        self.answered = 0
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_cached = 0
        self.tokens_cache_write = 0
        self.tokens_reasoning = 0
        self.rejection = False         # issued by the rpm/tpm/concurrency limiters
        self.server = "cloudflare"
        self.service_tier = None       # OpenAI: the tier a 200 says it used
        self.cut = False               # the answer did not fit its output limit


HTML_502_CLOUDFLARE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n")
HTML_504_CLOUDFLARE = (
    b"<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    b"<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    b"</body>\r\n</html>\r\n")


def google_html_error(code, title, text):
    """The Google Front End error page (what a 502/408 from Google looks like: HTML, not JSON)."""
    return (
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n"
        f"  <title>Error {code} ({title})!!1</title>\n"
        "  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n"
        f"  <p><b>{code}.</b> <ins>That\u2019s an error.</ins>\n"
        f"  <p>{text}  <ins>That\u2019s all we know.</ins>\n").encode("utf-8")


def rate_signal_headers(signal_, seconds):
    """Headers for one rate-limit signal (the body-borne signals add none)."""
    if signal_ == "retry_after":
        return [("retry-after", str(max(1, math.ceil(seconds))))]
    if signal_ == "retry_after_ms":
        return [("retry-after-ms", str(int(round(seconds * 1000))))]
    if signal_ == "retry_after_date":
        return [("retry-after", email.utils.formatdate(time.time() + seconds, usegmt=True))]
    return []


def shape_error(reply, fault):
    """An error fault's params.signal (header signals, on kinds other than rate_limit,
    which tells its own), params.headers and params.body: any wait hint, on any error,
    with any body -- empty, not JSON, or JSON of another shape."""
    p = fault.params
    if fault.kind != "rate_limit" and p.get("signal"):
        reply.headers += rate_signal_headers(p["signal"], float(p.get("seconds", 1)))
    reply.headers += list(p.get("headers", {}).items())
    if "body" in p:
        reply.body = p["body"].encode()
        try:
            json.loads(reply.body)
            reply.content_type = "application/json"
        except ValueError:
            reply.content_type = "text/plain; charset=utf-8"
    return reply
