"""
The optional JSON-lines request log (--log, --log-prompts), which never holds a
key: Authorization is never logged and ?key= is redacted from paths.
"""

import json
import threading
from urllib.parse import parse_qsl


class RequestLog:
    """Optional JSON-lines request log.  Never contains keys or Authorization values."""

    def __init__(self, path, prompts=False):
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1, encoding="utf-8") if path else None
        self.prompts = prompts      # --log-prompts: each request's whole user turn

    def write(self, entry):
        if self.f:
            line = json.dumps(entry, separators=(",", ":"))
            with self.lock:
                self.f.write(line + "\n")

    def close(self):
        if self.f:
            self.f.close()


def redact_query(path):
    """Drop the value of ?key= so a Gemini key sent in the URL never reaches the log."""
    if "?" not in path:
        return path
    base, _, q = path.partition("?")
    parts = [(k, "REDACTED" if k.lower() == "key" else v) for k, v in parse_qsl(q, True)]
    return base + "?" + "&".join(f"{k}={v}" for k, v in parts)
