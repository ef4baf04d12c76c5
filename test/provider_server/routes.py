"""
Which provider and adapter a path belongs to: the adapter table, the provider
routes, each provider's 404 for a path it does not have, and the model name a
limiter message can use before the body is validated.
"""

import json
import re
from urllib.parse import unquote

from .config import PROVIDERS
from .provider_deepseek import DeepSeekAdapter
from .provider_gemini import GeminiAdapter
from .provider_openai import OpenAIAdapter

ADAPTERS = {"openai": OpenAIAdapter(), "deepseek": DeepSeekAdapter(), "gemini": GeminiAdapter()}

GEMINI_PATH_RE = re.compile(r"^/gemini/(v1beta|v1)/models/([^/:]+):generateContent$")


MODELS_ROUTES = {"/openai/v1/models": "openai", "/deepseek/models": "deepseek",
                 "/deepseek/v1/models": "deepseek", "/gemini/v1beta/models": "gemini"}


def route(path):
    """(provider, route params) for a provider path; params None means 'no such route';
    ("models", None) is the model list."""
    if path in MODELS_ROUTES:
        return MODELS_ROUTES[path], ("models", None)
    if path == "/openai/v1/chat/completions":
        return "openai", ()
    if path in ("/deepseek/chat/completions", "/deepseek/v1/chat/completions"):
        return "deepseek", ()
    m = GEMINI_PATH_RE.match(path)
    if m:
        return "gemini", (m.group(1), unquote(m.group(2)))
    for p in PROVIDERS:
        if path.startswith(f"/{p}/"):
            return p, None
    return None, None


def unknown_route(provider, method, path):
    if provider == "gemini":
        return ADAPTERS["gemini"].error(404, "NOT_FOUND", f"Method not found: {path}")
    a = ADAPTERS[provider]
    return a.error(404, f"Invalid URL ({method} {path})")


def sniff_model(raw, route_params):
    """Model name for a limiter message, without full validation."""
    if route_params:
        return route_params[1]      # Gemini's from the path; None for the model list
    try:
        m = json.loads(raw).get("model")
        return m if isinstance(m, str) else None
    except (ValueError, AttributeError):
        return None
