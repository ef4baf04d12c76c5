# ctr_dist: PGXS build, plus the commands of the README:
#   make demo          install what is missing, build, start a throwaway
#                      cluster, load sample personas and run ctr_predict
#   make test          the same set-up, then the whole test suite
#   make test-matrix   the suite on every PostgreSQL major Debian has, each
#                      in a Debian chroot, and the Debian package of each
#   make deb           the Debian package for PG_MAJOR, built in its chroot
#                      and installed into a clean one
#   make dist          the PGXN release archive, ctr_dist-VERSION.zip
# PG_MAJOR=NN picks the PostgreSQL major for demo, test and deb (default 15,
# the host's); PG_CONFIG=path builds against any other installation.

EXTENSION = ctr_dist
MODULE_big = ctr_dist
DATA = ctr_dist--0.1.0.sql ctr_dist--0.1.0--0.2.0.sql
OBJS = \
	src/answer.o \
	src/breaker.o \
	src/budget.o \
	src/channel.o \
	src/compare.o \
	src/ctr_dist.o \
	src/encoding.o \
	src/engine.o \
	src/halves.o \
	src/hedge.o \
	src/inference.o \
	src/inference_sql.o \
	src/keys.o \
	src/mock.o \
	src/models.o \
	src/multi.o \
	src/personas.o \
	src/plan.o \
	src/predict.o \
	src/prompt.o \
	src/provider.o \
	src/provider_deepseek.o \
	src/provider_gemini.o \
	src/provider_json.o \
	src/provider_openai.o \
	src/provider_util.o \
	src/quirks.o \
	src/ratelimit.o \
	src/report.o \
	src/request_json.o \
	src/resolve.o \
	src/settle.o \
	src/split.o \
	src/stats.o \
	src/transfer.o \
	src/wait_events.o \
	src/window.o \
	src/worker.o

# no JIT bitcode: clang need not be installed (override: PGXS sets it later)
override with_llvm = no

# the version, once: from the control file
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(srcdir)/ctr_dist.control)
PG_CPPFLAGS = -I$(srcdir)/src -DCTR_DIST_VERSION='"$(EXTVERSION)"'
SHLIB_LINK = -lcurl -lcjson -lm -lpthread

REGRESS = setup contract bad_input plan mock security operations lifetimes inference
REGRESS_OPTS = --inputdir=$(srcdir) --outputdir=$(CURDIR)

# TAP tests (test/t) need the postgres user and the test provider server:
# test/run-tests.sh runs them after pg_regress.

EXTRA_CLEAN = results regression.diffs regression.out tmp_check src/.pg_version

# On a machine without PostgreSQL's development files, pg_config does not
# exist yet: the demo and test targets install it first.
PG_MAJOR ?= 15
export PG_MAJOR
PG_CONFIG ?= $(shell test -x /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config && echo /usr/lib/postgresql/$(PG_MAJOR)/bin/pg_config || echo pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(PGXS),)
include $(PGXS)

# objects built against another major are never linked: rebuild them all
# when PG_CONFIG names another PostgreSQL
PG_BUILD_VERSION := $(shell $(PG_CONFIG) --version) $(PG_CONFIG)
src/.pg_version: FORCE
	@echo '$(PG_BUILD_VERSION)' | cmp -s - $@ || echo '$(PG_BUILD_VERSION)' > $@
$(OBJS): src/.pg_version
.PHONY: FORCE
else
all:
	@echo "PostgreSQL development files are missing: run 'make demo' or 'make test' (they install them), or test/install-deps.sh" >&2
	@exit 1
endif

.PHONY: demo test
demo:
	bash test/demo.sh

test:
	bash test/run-tests.sh
	$(MAKE) -s check-inference

# the unit test of src/inference.c, outside the server (part of make test)
.PHONY: check-inference
check-inference:
	@mkdir -p tmp_check
	$(CC) -std=gnu99 -O2 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
		-I$(srcdir)/src $(srcdir)/test/inference_check.c $(srcdir)/src/inference.c -lm \
		-o tmp_check/inference_check
	tmp_check/inference_check

# MAJORS="17 18" for some of them; CTR_CHROOTS moves the chroots
MAJORS ?= 15 17 18 19
.PHONY: test-matrix deb dist
test-matrix:
	bash test/matrix.sh $(MAJORS)

deb:
	bash test/deb.sh $(PG_MAJOR)

# the tracked files of HEAD, as PGXN wants them: one directory
# ctr_dist-VERSION/ in a zip named the same
dist:
	python3 test/pgxn_meta_check.py META.json
	git archive --format=zip --prefix=ctr_dist-$(EXTVERSION)/ -o ctr_dist-$(EXTVERSION).zip HEAD
	@echo ctr_dist-$(EXTVERSION).zip

# the suite against PostgreSQL 15 built from Debian's source with assertions
# (test/pgbuild.sh, cached in /var/tmp/ctr-dist-pg); fails on any assertion
# failure or crash in a server log
.PHONY: test-debug
test-debug:
	bash test/debug-tests.sh

sanitize:
	bash test/sanitize.sh

# libFuzzer harnesses for everything that reads untrusted bytes (fuzz/)
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz:
	$(MAKE) -C fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS)

# the performance suite (test/bench), not part of make test
.PHONY: bench
bench:
	bash test/bench/run.sh

.PHONY: sanitize valgrind
valgrind:
	bash test/valgrind.sh
