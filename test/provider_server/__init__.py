"""
provider_server.py -- a local fake of the three LLM APIs ctr_dist calls.

    OpenAI    POST /openai/v1/chat/completions
    DeepSeek  POST /deepseek/chat/completions   (and /deepseek/v1/chat/completions)
    Gemini    POST /gemini/v1beta/models/{model}:generateContent

Bodies, headers, error envelopes and rate-limit signals follow
/work/shared/reference/provider-wire-formats.md (cited as "spec §N").
Answers are deterministic: every prompt line "[k] text" is a persona, and
the answer for it is 1 when the text contains "CLICK", else 0.  Faults,
limits and latency are knobs set with --config or POST /_control/config.
See PROVIDER_SERVER.md for the full list.

Standard library only, so it runs with any Python 3.11 on the test machine.
test/provider_server.py starts it.  A request goes down this list; the
last two, config and wire, serve all the others:

    main               command line, port file, signals, parent watch
    httpd              Handler, FakeServer: read, dispatch, log, transmit
    routes             path -> provider and adapter
    app                App: control operations, auth, limiters, faults, answer
    provider_openai    ChatAdapter, OpenAIAdapter
    provider_deepseek  DeepSeekAdapter
    provider_gemini    GeminiAdapter and Gemini's proto field tables
    strict             OpenAI strict json_schema rules
    answers            Req, personas and their truth, answer text
    reply              Reply, HTML error pages, rate-limit signals
    state              per-provider counters, windows, prompt cache
    requestlog         the JSON-lines request log
    config             knobs, model table, fault kinds -> Config
    wire               stateless helpers (JSON, durations, gzip, ids)
"""
