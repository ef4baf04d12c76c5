#!/usr/bin/python3
"""make_personas.py -- persona files for baseline.py, from ctr_dist's own sample table.

Reads the COPY block of test/sample_personas.sql (the `personas` table that `make demo` and the
tests load), takes the first --rows rows in id order, and writes them as PostgreSQL would export
them:

  --csv   like  \\copy (SELECT * FROM personas ORDER BY id) TO 'f.csv' CSV HEADER
  --jsonl like  psql -AtXc 'SELECT row_to_json(p) FROM personas p ORDER BY id'

The fake provider server answers 1 for a persona iff its prompt text contains "CLICK", so
--click-rate of the rows (chosen with a fixed seed) get " CLICK" appended to their description;
rows whose description is NULL are left alone.

--skip-null-rows drops rows with a NULL in age or a Big Five trait (the old tool's mock crashes
on those, see README.md) and keeps going until --rows rows are collected.
"""

import argparse
import csv
import json
import os
import random
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SQL = os.path.normpath(os.path.join(HERE, "..", "..", "sample_personas.sql"))
INTS = {"id", "age"}
REALS = {"openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism"}
ESC = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def copy_unescape(field):
    """PostgreSQL COPY text format: \\N is NULL; backslash escapes as documented for COPY."""
    if field == "\\N":
        return None
    out, i = [], 0
    while i < len(field):
        c = field[i]
        if c != "\\" or i + 1 == len(field):
            out.append(c)
            i += 1
            continue
        d = field[i + 1]
        if d in ESC:
            out.append(ESC[d])
            i += 2
        elif d == "x" and re.match(r"[0-9a-fA-F]", field[i + 2:i + 3] or " "):
            m = re.match(r"[0-9a-fA-F]{1,2}", field[i + 2:])
            out.append(chr(int(m.group(0), 16)))
            i += 2 + len(m.group(0))
        elif d in "01234567":
            m = re.match(r"[0-7]{1,3}", field[i + 1:])
            out.append(chr(int(m.group(0), 8)))
            i += 1 + len(m.group(0))
        else:
            out.append(d)
            i += 2
    return "".join(out)


def read_copy(path):
    cols, rows, inside = None, [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not inside:
                m = re.match(r"COPY personas \((.*)\) FROM stdin;", line)
                if m:
                    cols = [c.strip() for c in m.group(1).split(",")]
                    inside = True
                continue
            if line == "\\.":
                break
            vals = [copy_unescape(v) for v in line.split("\t")]
            row = {}
            for c, v in zip(cols, vals):
                if v is not None and c in INTS:
                    v = int(v)
                elif v is not None and c in REALS:
                    v = float(v)
                    v = int(v) if v.is_integer() else v    # row_to_json prints real 3 as 3
                row[c] = v
            rows.append(row)
    if cols is None:
        sys.exit("no 'COPY personas (...) FROM stdin;' block in %s" % path)
    return cols, sorted(rows, key=lambda r: r["id"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sql", default=DEFAULT_SQL)
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--click-rate", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=20260101)
    ap.add_argument("--skip-null-rows", action="store_true")
    ap.add_argument("--csv")
    ap.add_argument("--jsonl")
    args = ap.parse_args()
    cols, rows = read_copy(args.sql)
    rnd = random.Random(args.seed)
    picked = []
    for r in rows:
        if len(picked) == args.rows:
            break
        if args.skip_null_rows and any(r.get(c) is None for c in ("age",) + tuple(sorted(REALS))):
            continue
        if r.get("description") is not None and rnd.random() < args.click_rate:
            r["description"] += " CLICK"
        picked.append(r)
    if len(picked) < args.rows:
        sys.stderr.write("only %d rows available\n" % len(picked))
    if args.csv:
        with open(args.csv, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(cols)
            for r in picked:
                w.writerow(["" if r[c] is None else r[c] for c in cols])
    if args.jsonl:
        with open(args.jsonl, "w", encoding="utf-8") as f:
            for r in picked:
                f.write(json.dumps({c: r[c] for c in cols}, ensure_ascii=False) + "\n")
    marked = sum("CLICK" in (r.get("description") or "") for r in picked)
    sys.stderr.write("make_personas: %d rows, %d with CLICK\n" % (len(picked), marked))


if __name__ == "__main__":
    main()
