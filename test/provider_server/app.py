"""
App, everything behind the HTTP layer: the current config, the state, the
control operations (config, reset, stats, outage), and the request pipeline --
auth, concurrency/rpm/tpm limiters, the adapter's validation, the prompt cache,
fault picking and the answer.
"""

import hashlib
import random
import threading
import time

from .answers import Req, answer_text
from .config import CLEAN_ANSWER_FAULTS, ERROR_FAULTS, PROVIDERS
from .reply import Reply, shape_error
from .routes import ADAPTERS, sniff_model
from .state import ProviderState, prune
from .wire import to_int

VIOLATION_LIST_CAP = 1000          # the list keeps the first N; counts keep all


class App:
    """Everything behind the HTTP layer: config, state, the request pipeline."""

    def __init__(self, config, log):
        self.lock = threading.Lock()
        self.config = config
        self.log = log
        self.state = {p: ProviderState() for p in PROVIDERS}
        self.violations = []
        self.violation_counts = {}
        self.started = time.monotonic()
        self.outage_until = 0.0     # monotonic time; see /_control/outage

    def in_outage(self):
        return time.monotonic() < self.outage_until

    # -- control ----------------------------------------------------------
    def set_config(self, config):
        with self.lock:
            self.config = config
            for st in self.state.values():
                st.seq = 0          # "first: N" counts from the new config
                st.seq_by_model = {}
                st.cache = {}

    def reset(self):
        with self.lock:
            for st in self.state.values():
                st.reset()
            self.violations = []
            self.violation_counts = {}

    def stats(self):
        with self.lock:
            out = {p: st.snapshot() for p, st in self.state.items()}
            out["violations"] = list(self.violations)
            out["violation_counts"] = dict(self.violation_counts)
            out["now"] = time.monotonic()
            out["uptime_s"] = round(time.monotonic() - self.started, 3)
        return out

    def violate(self, provider, text):
        entry = f"{provider}: {text}"
        with self.lock:
            if len(self.violations) < VIOLATION_LIST_CAP:
                self.violations.append(entry)
            self.violation_counts[entry] = self.violation_counts.get(entry, 0) + 1
        return entry

    # -- limiter views ----------------------------------------------------
    def ratelimit_snapshot(self, provider, cfg):
        """Values for OpenAI's x-ratelimit-* headers, from the sliding windows."""
        now = time.monotonic()
        limit_r = cfg.rpm or 5000
        limit_t = cfg.tpm or 200000
        with self.lock:
            st = self.state[provider]
            prune(st.admitted, now - cfg.window_s)
            self._prune_tokens(st, now - cfg.window_s)
            used_r, used_t = len(st.admitted), st.token_sum
        # Token-bucket reading: time to refill what was used (5000 rpm, 1 used -> 12ms).
        return {"limit_requests": limit_r, "limit_tokens": limit_t,
                "remaining_requests": max(0, limit_r - used_r),
                "remaining_tokens": max(0, limit_t - used_t),
                "reset_requests": used_r * cfg.window_s / limit_r,
                "reset_tokens": used_t * cfg.window_s / limit_t}

    @staticmethod
    def _prune_tokens(st, horizon):
        while st.token_log and st.token_log[0][0] <= horizon:
            st.token_sum -= st.token_log.popleft()[1]

    # -- the pipeline -----------------------------------------------------
    def arrive(self, provider, cfg, headers, model=None):
        now = time.monotonic()
        ua = headers.get("User-Agent")
        ae = headers.get("Accept-Encoding")
        with self.lock:
            st = self.state[provider]
            st.requests += 1
            st.in_flight += 1
            st.in_flight_by_model[model] = st.in_flight_by_model.get(model, 0) + 1
            st.max_in_flight_by_model[model] = max(st.max_in_flight_by_model.get(model, 0),
                                                   st.in_flight_by_model[model])
            st.max_in_flight = max(st.max_in_flight, st.in_flight)
            if st.first_request_at is None:
                st.first_request_at = now
            st.last_request_at = now
            st.arrivals.append(now)
            prune(st.arrivals, now - cfg.window_s)
            st.max_rate_observed = max(st.max_rate_observed, len(st.arrivals))
            if ua and len(st.user_agents_seen) < 50:
                st.user_agents_seen.add(ua)
            if ae and len(st.accept_encoding_seen) < 50:
                st.accept_encoding_seen.add(ae)
            seq = st.seq
            st.seq += 1
            model_seq = st.seq_by_model.get(model, 0)
            st.seq_by_model[model] = model_seq + 1
            return (seq, model_seq), st.in_flight

    def depart(self, provider, reply, fault_kind, model=None):
        with self.lock:
            st = self.state[provider]
            st.in_flight -= 1
            st.in_flight_by_model[model] = st.in_flight_by_model.get(model, 1) - 1
            key = str(reply.status) if reply and reply.transport not in ("reset", "hang") else "closed"
            st.status[key] = st.status.get(key, 0) + 1
            if fault_kind:
                st.faults[fault_kind] = st.faults.get(fault_kind, 0) + 1
            if reply:
                st.tokens_in += reply.tokens_in
                st.tokens_out += reply.tokens_out
                st.tokens_cached += reply.tokens_cached
                st.tokens_cache_write += reply.tokens_cache_write
                st.tokens_reasoning += reply.tokens_reasoning
                if reply.service_tier:
                    st.service_tiers[reply.service_tier] = st.service_tiers.get(reply.service_tier, 0) + 1
                st.answered_personas += reply.answered
                if reply.rejection:
                    st.rejections += 1

    def admit_rpm(self, provider, cfg):
        """Sliding-window request limit; returns seconds to wait, or None when admitted."""
        now = time.monotonic()
        with self.lock:
            st = self.state[provider]
            prune(st.admitted, now - cfg.window_s)
            if cfg.rpm is not None and len(st.admitted) >= cfg.rpm:
                return max(0.001, st.admitted[0] + cfg.window_s - now)
            st.admitted.append(now)
            return None

    def admit_tokens(self, provider, cfg, tokens):
        """Sliding-window token limit (prompt + max tokens, as OpenAI estimates it)."""
        now = time.monotonic()
        with self.lock:
            st = self.state[provider]
            self._prune_tokens(st, now - cfg.window_s)
            if cfg.tpm is not None and st.token_log and st.token_sum + tokens > cfg.tpm:
                return max(0.001, st.token_log[0][0] + cfg.window_s - now), st.token_sum
            st.token_log.append((now, tokens))
            st.token_sum += tokens
            return None, st.token_sum

    def prompt_cache(self, provider, cfg, req, min_tokens, writes, units=False):
        """Cached (and written) prompt tokens of req, by the provider's rule
        (providers-2026-12.md):
          OpenAI, Gemini: the longest prefix identical to a recent request's, in whole
            128-token chunks (512 bytes here), if at least min_tokens long; newer OpenAI
            models report what they wrote to the cache (the rest, from min_tokens on);
          DeepSeek (units): "prefix units" are kept at the end of each request and where
            a prefix common to two requests is found; a request hits only units it matches
            in full, in 64-token (256-byte) steps.
        Entries live cache_ttl_s from their last use.  Knob prompt_cache false: none."""
        if not cfg.prompt_cache or req.model is None:
            return 0, 0
        data = req.cache_text.encode("utf-8")
        chunk = 256 if units else 512
        chain, h = [], b""
        for k in range(len(data) // chunk):
            h = hashlib.blake2b(h + data[k * chunk:(k + 1) * chunk], digest_size=16).digest()
            chain.append(h)
        now = time.monotonic()
        until = now + cfg.cache_ttl_s
        with self.lock:
            store = self.state[provider].cache.setdefault(
                req.model, {"seen": {}, "units": {}, "sweep_at": 200000})
            seen, unit_set = store["seen"], store["units"]
            if len(seen) > store["sweep_at"]:   # forget what expired, now and then
                for d in (seen, unit_set):
                    for key in [k for k, e in d.items() if e <= now]:
                        del d[key]
                # the next sweep when the live entries have doubled: a sweep that
                # frees nothing is not repeated on every request (that made a
                # million-persona run quadratic)
                store["sweep_at"] = max(200000, 2 * len(seen))

            def alive(d, key):
                return d.get(key, 0) > now

            if units:
                hit = max((k + 1 for k in range(len(chain)) if alive(unit_set, chain[k])), default=0)
                lcp = 0
                while lcp < len(chain) and alive(seen, chain[lcp]):
                    lcp += 1
                if lcp:
                    unit_set[chain[lcp - 1]] = until
                if chain:
                    unit_set[chain[-1]] = until
                for key in chain:
                    seen[key] = until
                return min(hit * 64, req.prompt_tokens), 0
            hit = 0
            while hit < len(chain) and alive(seen, chain[hit]):
                hit += 1
            for key in chain:
                seen[key] = until
        min_chunks = -(-min_tokens // 128)
        cached = hit * 128 if hit >= min_chunks else 0
        written = (len(chain) - hit) * 128 if writes and len(chain) >= min_chunks else 0
        cached = min(cached, req.prompt_tokens)
        return cached, min(written, req.prompt_tokens - cached)

    def pick_fault(self, cfg, seq, model=None):
        """At most one fault, chosen by an RNG seeded from (seed, provider, request number),
        so the outcome of request #n does not depend on thread timing.  A fault with a
        "model" applies only to that model's requests and counts "first"/"after" in them."""
        if not cfg.faults:
            return None
        seq, model_seq = seq
        rng = random.Random(f"{cfg.seed}|{cfg.name}|{seq}")
        for f in cfg.faults:
            n = seq
            if f.model is not None:
                if f.model != model:
                    continue
                n = model_seq
            if f.first is not None and n >= f.first:
                continue
            if f.after is not None and n < f.after:
                continue
            if rng.random() < f.rate:
                return f
        return None

    def authorize(self, provider, headers, query):
        """The key check every route starts with: (cfg, adapter, key, the violations list, a
        function that records one, and the provider's auth error or None)."""
        cfg = self.config.providers[provider]
        a = ADAPTERS[provider]
        violated = []

        def violate(text):
            violated.append(self.violate(provider, text))

        key, in_url, malformed = a.presented_key(headers, query)
        if in_url:
            violate("key sent in URL")
        if key != cfg.key:
            violate("missing API key" if key is None else "wrong API key")
            return cfg, a, key, violated, violate, a.auth_error(key, malformed)
        return cfg, a, key, violated, violate, None

    def process(self, provider, route_params, headers, query, raw, in_flight, seq):
        """Run one provider request through auth, limiters, validation and faults."""
        cfg, a, key, violated, violate, refused = self.authorize(provider, headers, query)
        if refused is not None:
            return refused, None, None, violated
        reply = self.request_limits(a, cfg, key, in_flight, raw, route_params)
        if reply is not None:
            return reply, None, None, violated
        if cfg.latency_s:
            time.sleep(cfg.latency_s)
        req, err = a.parse(raw, route_params, cfg, violate)
        if err:
            return err, None, None, violated
        req.presented_key = key
        digest = hashlib.blake2b(raw, digest_size=16).digest()
        with self.lock:
            st = self.state[provider]
            if digest in st.bodies:
                st.identical_repeats += 1
            elif len(st.bodies) < 200000:
                st.bodies.add(digest)
        # Tokens are tracked for OpenAI's x-ratelimit-*-tokens headers even without tpm.
        if cfg.tpm is not None or provider == "openai":
            est = req.prompt_tokens + (to_int(req.max_tokens) or 0)
            wait, used = self.admit_tokens(provider, cfg, est)
            if wait is not None:
                reply = a.limiter_429(req, cfg, self, wait, "tokens", cfg.tpm, used)
                reply.rejection = True
                return reply, req, None, violated
        fault = self.pick_fault(cfg, seq, req.model)
        return self.answer(a, req, fault, cfg), req, fault, violated

    def list_models(self, provider, headers, query, in_flight, seq):
        """GET .../models: auth, limits, error faults and reset/hang as for any request, then the
        provider's list (OpenAI with shutdown_date where one is announced, Gemini in
        pages of models_page_size, with token limits and supported methods)."""
        cfg, a, key, violated, violate, refused = self.authorize(provider, headers, query)
        if refused is not None:
            return refused, None, violated
        reply = self.request_limits(a, cfg, key, in_flight, b"", ("models", None))
        if reply is not None:
            return reply, None, violated
        with self.lock:
            self.state[provider].models_requests += 1
        probe = Req(provider)
        probe.presented_key = key
        fault = self.pick_fault(cfg, seq, None)
        if fault and fault.kind in ERROR_FAULTS and fault.kind != "flex_unavailable":
            return a.fault_error(fault.kind, fault, probe, cfg, self), fault, violated
        if fault and fault.kind in ("reset", "hang"):
            return self.answer(a, probe, fault, cfg), fault, violated
        return a.model_list(cfg, query, violate), None, violated

    def request_limits(self, a, cfg, key, in_flight, raw, route_params):
        """The 429 from max_concurrency or rpm, in the provider's style; None if admitted."""
        probe = Req(cfg.name)
        probe.presented_key = key
        if cfg.max_concurrency is not None and in_flight > cfg.max_concurrency:
            # DeepSeek's concurrency 429 is immediate and says nothing about when to retry.
            reply = a.rate_limited(probe, cfg, self, 1.0, "none")
        else:
            wait = self.admit_rpm(cfg.name, cfg)
            if wait is None:
                return None
            probe.model = sniff_model(raw, route_params)
            reply = a.limiter_429(probe, cfg, self, wait, "requests", cfg.rpm, cfg.rpm)
        reply.rejection = True
        return reply

    def answer(self, a, req, fault, cfg):
        if fault and fault.kind == "flex_unavailable" and req.service_tier != "flex":
            fault = None            # only flex requests can find flex out of capacity
        kind = fault.kind if fault else None
        if kind in ERROR_FAULTS or (kind == "insufficient_system_resource" and a.name != "deepseek"):
            return shape_error(a.fault_error(kind, fault, req, cfg, self), fault)
        if kind in ("reset", "hang"):
            reply = Reply(0)
            reply.transport = kind
            reply.tparams = {"seconds": float(fault.param("seconds", 5))}
            return reply
        reply = a.completion(req, answer_text(req, fault, cfg.answer_spacing), fault, cfg, self)
        if kind == "empty_body":
            reply.body = b""
            reply.tokens_in = reply.tokens_out = 0
        if kind in CLEAN_ANSWER_FAULTS and not reply.cut:
            reply.answered = len(req.truth)
        if kind == "slow_body":
            reply.transport = "slow"
            reply.tparams = {"seconds": float(fault.param("seconds", 2))}
        elif kind == "keepalive_blank_lines":
            reply.transport = "keepalive"
            reply.tparams = {"seconds": float(fault.param("seconds", 2)),
                             "interval_ms": float(fault.param("interval_ms", 200)),
                             "then": fault.param("then", "body")}
        return reply
