"""
Per-provider state: the counters /_control/stats reports, the sliding windows
the rpm/tpm limiters and x-ratelimit-* headers read, the fault sequence numbers
and the prompt cache.  Guarded by App.lock.
"""

from collections import deque


class ProviderState:
    """Counters and sliding windows of one provider.  Guarded by App.lock."""

    def __init__(self):
        self.in_flight = 0          # survives reset: requests are still running
        self.in_flight_by_model = {}
        # the prompt cache survives reset (a provider's does); a new config empties it
        self.cache = {}             # model -> {"seen": {hash: expiry}, "units": {...}}
        self.reset()

    def reset(self):
        self.requests = 0
        self.status = {}
        self.faults = {}
        self.max_in_flight = self.in_flight
        self.max_in_flight_by_model = {m: n for m, n in self.in_flight_by_model.items() if n}
        self.tokens_in = 0
        self.tokens_out = 0
        self.tokens_cached = 0
        self.tokens_cache_write = 0
        self.tokens_reasoning = 0
        self.service_tiers = {}     # service_tier answered -> count
        self.params_by_model = {}   # model -> set of optional parameters seen
        self.models_requests = 0    # GET .../models
        self.bodies = set()         # digests of the request bodies seen
        self.identical_repeats = 0  # requests whose body was seen before
        self.answered_personas = 0
        self.rejections = 0
        self.max_rate_observed = 0
        self.first_request_at = None
        self.last_request_at = None
        self.models_seen = set()
        self.user_agents_seen = set()
        self.accept_encoding_seen = set()
        self.arrivals = deque()     # every request, for max_rate_observed
        self.admitted = deque()     # requests the rpm limiter let through
        self.token_log = deque()    # (time, tokens) for tpm and x-ratelimit-*-tokens
        self.token_sum = 0
        self.seq = 0                # per-provider order, drives fault picking
        self.seq_by_model = {}      # the same per model, for faults with "model"

    def snapshot(self):
        return {
            "requests": self.requests,
            "status": dict(self.status),
            "faults": dict(self.faults),
            "max_in_flight": self.max_in_flight,
            "in_flight": self.in_flight,
            "in_flight_by_model": {m: n for m, n in self.in_flight_by_model.items() if n},
            "max_in_flight_by_model": dict(self.max_in_flight_by_model),
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_cached": self.tokens_cached,
            "tokens_cache_write": self.tokens_cache_write,
            "tokens_reasoning": self.tokens_reasoning,
            "service_tiers": dict(self.service_tiers),
            "params_by_model": {m: sorted(p) for m, p in self.params_by_model.items()},
            "models_requests": self.models_requests,
            "identical_repeats": self.identical_repeats,
            "answered_personas": self.answered_personas,
            "rejections": self.rejections,
            "max_rate_observed": self.max_rate_observed,
            "first_request_at": self.first_request_at,
            "last_request_at": self.last_request_at,
            "models_seen": sorted(self.models_seen),
            "user_agents_seen": sorted(self.user_agents_seen),
            "accept_encoding_seen": sorted(self.accept_encoding_seen),
        }


def prune(window, horizon):
    """Drop timestamps at or before horizon from the left of a sorted deque."""
    while window and window[0] <= horizon:
        window.popleft()
