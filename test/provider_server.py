#!/usr/bin/env python3
"""
provider_server.py -- a local fake of the three LLM APIs ctr_dist calls.

The entry point every test and benchmark runs (python3 test/provider_server.py
[--port 0] [--port-file PATH] ...).  The server is the package provider_server/
beside this file; its __init__.py lists the modules and what each owns, and
PROVIDER_SERVER.md documents the knobs and the control API.
"""

import sys

from provider_server.main import main

if __name__ == "__main__":
    sys.exit(main())
