#!/usr/bin/env bash
# make demo: install what is missing, build and install the extension, start
# a throwaway cluster, load the sample personas and run the main job.
# Uses the offline mock unless OPENAI_API_KEY, DEEPSEEK_API_KEY or
# GEMINI_API_KEY are set in the environment.
set -euo pipefail
cd "$(dirname "$0")/.."

bash test/install-deps.sh
export PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
make -s
make -s install
pg_virtualenv -t -o shared_preload_libraries=ctr_dist \
	psql -X -q -v ON_ERROR_STOP=1 -f test/demo.sql
