#!/usr/bin/env bash
# make demo: install what is missing, build and install the extension, start
# a throwaway cluster, load the sample personas and run the main job.
# Uses the offline mock unless OPENAI_API_KEY, DEEPSEEK_API_KEY or
# GEMINI_API_KEY are set in the environment.  PG_MAJOR picks the PostgreSQL
# major (default 15).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=${PG_MAJOR:-15}
export PG_MAJOR
bash test/install-deps.sh
export PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
make -s
make -s install
pg_virtualenv -t -v "$PG_MAJOR" -o shared_preload_libraries=ctr_dist \
	psql -X -q -v ON_ERROR_STOP=1 -f test/demo.sql
