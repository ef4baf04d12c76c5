"""
Process lifecycle: the command line, the port file, SIGTERM/SIGINT, and exiting
when the parent process goes away.
"""

import argparse
import os
import signal
import sys
import threading
import time

from . import __doc__ as OVERVIEW
from .app import App
from .config import Config, ConfigError, load_config_arg
from .httpd import FakeServer, Handler
from .requestlog import RequestLog


def pid_alive(pid):
    """True while pid exists and is not a zombie (a dead, unreaped parent counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True


def write_port_file(path, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)           # readers never see a partial file


def watch_parent(pid, stop):
    while True:
        time.sleep(1.0)
        if not pid_alive(pid):
            stop()
            return


def main(argv=None):
    ap = argparse.ArgumentParser(description=OVERVIEW.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--log", help="JSON-lines request log (no keys are ever written)")
    ap.add_argument("--log-prompts", action="store_true",
                    help="the log gets each request's whole user turn, as the server decoded it")
    ap.add_argument("--config", help="initial knobs: JSON text, or a path to a JSON file")
    ap.add_argument("--parent-pid", type=int, help="exit when this process disappears")
    args = ap.parse_args(argv)

    try:
        config = Config(load_config_arg(args.config))
    except (ValueError, OSError, ConfigError) as e:
        print(f"provider_server: bad --config: {e}", file=sys.stderr)
        return 2
    log = RequestLog(args.log, args.log_prompts)
    server = FakeServer(("127.0.0.1", args.port), Handler)
    server.app = App(config, log)
    port = server.server_address[1]

    stopping = threading.Event()

    def stop(*_):
        # shutdown() waits for serve_forever(), so never call it on the serving thread.
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.parent_pid:
        threading.Thread(target=watch_parent, args=(args.parent_pid, stop), daemon=True).start()
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"provider_server listening on 127.0.0.1:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        log.close()
    return 0
