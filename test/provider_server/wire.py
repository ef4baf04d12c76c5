"""
Small wire helpers with no state: compact JSON, key masking, token counts,
the duration formats providers use, Accept-Encoding, ids, lenient integers.
"""

import base64
import json
import os


def mask_key(key):
    """Show at most the last four characters of a key, and none of a short one."""
    if not key:
        return ""
    return "****" + key[-4:] if len(key) >= 8 else "****"


def jdump(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ceil4(n):
    return (n + 3) // 4


def go_duration(seconds):
    """Format like Go's time.Duration.String(), which OpenAI uses in x-ratelimit-reset-*."""
    ms = int(round(max(seconds, 0.0) * 1000))
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s = (f"{rem / 1000:.3f}".rstrip("0").rstrip(".") or "0") + "s"
    return (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + s


def proto_duration(seconds):
    """google.protobuf.Duration JSON form: "47s", "0.512s"."""
    return (f"{seconds:.3f}".rstrip("0").rstrip(".") or "0") + "s"


def accepts_gzip(header):
    if not header:
        return False
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = params.strip()
            try:
                return not (q.startswith("q=") and float(q[2:] or 0) == 0)
            except ValueError:
                return True
    return False


def random_id(nbytes):
    return base64.urlsafe_b64encode(os.urandom(nbytes)).decode().rstrip("=")


def to_int(v):
    try:
        return int(v)
    except (TypeError, ValueError):
        return None
