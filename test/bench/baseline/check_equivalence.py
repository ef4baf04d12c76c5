#!/usr/bin/python3
"""check_equivalence.py -- test baseline.py against the original tool's own functions.

Loads CTRPrediction/base_client.py of Ezrill-Lin/wisteria-ctr-studio at commit 30651dc (it only
imports the standard library) from a git clone or a plain file, and compares, on the same inputs:

  * the prompt            baseline.build_prompt      vs  _build_prompt
  * parse + pad/trim      baseline.parse_answer ...  vs  BaseLLMClient._parse_and_validate_response
  * the mock heuristic    baseline.mock_predict      vs  _mock_predict   (values and crashes)

Usage:
  /usr/bin/python3 check_equivalence.py --git-dir /path/to/wisteria-ctr-studio/.git \\
        --personas personas.jsonl
  /usr/bin/python3 check_equivalence.py --source base_client.py --personas personas.jsonl

Exit status 0 when everything matches.
"""

import argparse
import contextlib
import io
import os
import random
import subprocess
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import baseline as bl  # noqa: E402

COMMIT = "30651dc"


def load_original(args):
    if args.source:
        with open(args.source, encoding="utf-8") as f:
            src = f.read()
    else:
        src = subprocess.run(["git", "--git-dir", args.git_dir, "show",
                              COMMIT + ":CTRPrediction/base_client.py"],
                             check=True, capture_output=True, text=True).stdout
    mod = types.ModuleType("orig_base_client")
    exec(compile(src, "orig_base_client.py", "exec"), mod.__dict__)
    return mod


def parse_cases(rnd):
    fixed = ["", "   ", "[]", "[0]", "[1]", "[0,1]", "[0, 1]", "[0,1,0,1]", "[0, 1, 0, 1]",
             "[true,false]", "[2,0]", "[10,0,1]", '[{"0":1},{"1":0}]', '[{"a":"1"}]',
             '{"clicks":[0,1,1,0]}', '{"clicks":[]}', '{"answer":[1,1]}',
             "```json\n[0,1,1]\n```", "\n\n```json\n[1,0]\n```",
             "Sure! Here are the predictions:\n[0,1,0]\nHope this helps.",
             "[0,1,", "[0,1", "[0,1,0", "0,1,0]", "[0.0,1.0]", '["0","1"]', "[[0],[1]]",
             "[0,1,0,1,1,1,0,0,1,0,1,1]", "[1]\n[0]", "null", "1", "[ 1 , 0 ]"]
    out = list(fixed)
    alphabet = "[]{},:01 2\n\"ab."
    for _ in range(6000):
        out.append("".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24))))
    for _ in range(3000):
        k = rnd.randint(0, 12)
        vals = [rnd.choice([0, 1]) for _ in range(k)]
        sep = rnd.choice([",", ", "])
        s = "[" + sep.join(map(str, vals)) + "]"
        wrap = rnd.choice(["%s", '{"clicks":%s}', "Here:\n%s\nbye", "```json\n%s\n```",
                           "  %s  ", "%s]"])
        s = wrap % s
        if rnd.random() < 0.2:
            s = s[:rnd.randint(0, len(s))]
        out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser()
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--git-dir")
    g.add_argument("--source")
    ap.add_argument("--personas", required=True, help="JSONL or CSV, as for baseline.py")
    args = ap.parse_args()
    orig = load_original(args)
    rows = bl.load_rows(args.personas)
    personas = [bl.to_old_persona(r) for r in rows]
    rnd = random.Random(7)
    failures = 0

    # 1. prompts
    ads = ["Premium fitness subscription - first month free",
           "Retirement planning webinar", "AI gadget \u2728 sale", ""]
    n_prompt = 0
    for size in (1, 7, 50, 200):
        for start in range(0, len(personas), max(size, 97)):
            batch = personas[start:start + size]
            for plat in ("facebook", "TikTok", "amazon", "linkedin"):
                ad = rnd.choice(ads)
                if bl.build_prompt(ad, batch, plat) != orig._build_prompt(ad, batch, plat):
                    failures += 1
                    print("PROMPT MISMATCH size=%d start=%d platform=%s" % (size, start, plat))
                n_prompt += 1
    print("prompts compared: %d" % n_prompt)

    # 2. parse + pad/trim + 0/1 mapping, including the mock fallback on parse failure
    clean = [p for p in personas
             if p["demographics"].get("age") is not None
             and all(v is not None for v in p["personality"]["scores"].values())]

    class Probe(orig.BaseLLMClient):
        def predict_chunk(self, *a, **k):
            raise NotImplementedError

        async def predict_chunk_async(self, *a, **k):
            raise NotImplementedError

    probe = Probe("m")
    n_parse = 0
    for s in parse_cases(rnd):
        n = rnd.choice([1, 2, 3, 4, 5, 8, 12])
        chunk = clean[:n]
        ad = rnd.choice(ads)
        with contextlib.redirect_stdout(io.StringIO()):
            want = probe._parse_and_validate_response(s, chunk, ad, "X")
        arr, _ = bl.parse_answer(s, n)
        if arr is None:
            got = bl.mock_predict(ad, chunk)
        else:
            arr = (arr + [0] * (n - len(arr)))[:n]
            got = [1 if int(x) else 0 for x in arr]
        if got != want:
            failures += 1
            if failures < 20:
                print("PARSE MISMATCH n=%d %r: baseline %r, original %r" % (n, s, got, want))
        n_parse += 1
    print("answers compared: %d" % n_parse)

    # 3. mock values, and crashes on NULLs
    n_mock = 0
    ad_pool = ["Premium fitness subscription", "credit card with travel points",
               "AI course for seniors", "luxury home decor", "community music event",
               "retail app", "health insurance", "nothing relevant"]
    for start in range(0, len(personas), 25):
        batch = personas[start:start + 25]
        for ad in ad_pool:
            try:
                want = orig._mock_predict(ad, batch)
            except Exception as e:
                want = ("raise", type(e).__name__)
            try:
                got = bl.mock_predict(ad, batch)
            except bl.MockCrash as e:
                got = ("raise", str(e).split(":")[0])
            if got != want:
                failures += 1
                print("MOCK MISMATCH start=%d ad=%r: %r vs %r" % (start, ad, got, want))
            n_mock += 1
    print("mock batches compared: %d" % n_mock)
    print("FAILURES: %d" % failures)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
