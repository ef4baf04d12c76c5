"""
The HTTP layer: Handler reads the body, dispatches to the control API or to App,
logs, and writes the reply in its transport mode (normal, gzip, slow body,
keep-alive blank lines, hang, TCP reset); FakeServer resets connections during
an outage.
"""

import gzip
import http.server
import json
import math
import os
import select
import socket
import socketserver
import struct
import sys
import time
from urllib.parse import parse_qsl

from .config import Config, ConfigError
from .reply import Reply
from .requestlog import redact_query
from .routes import route, sniff_model, unknown_route
from .wire import accepts_gzip

MAX_BODY = 64 * 1024 * 1024


class BadRequestBody(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"       # keep-alive + Content-Length
    server_header = "fake-provider"

    def setup(self):
        super().setup()
        # Headers and body go out in one write, but small control replies and the
        # slow/keep-alive modes write several times; no Nagle delay for them.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):   # quiet: the request log is --log
        pass

    def version_string(self):
        return self.server_header

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    # -- request body -----------------------------------------------------
    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise BadRequestBody("body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0 or n > MAX_BODY:
            raise BadRequestBody("body too large")
        return self.rfile.read(n)

    # -- dispatch ---------------------------------------------------------
    def dispatch(self, method):
        app = self.server.app
        path, _, qs = self.path.partition("?")
        try:
            raw = self.read_body()
        except (BadRequestBody, ValueError):
            self.close_connection = True
            self.send_plain(413, {"error": "request body unreadable or too large"})
            return
        if path.startswith("/_control/"):
            self.control(app, method, path, raw)
            return
        provider, params = route(path)
        if provider is None:
            self.send_plain(404, {"error": f"no such route: {path}"})
            return
        cfg = app.config.providers[provider]
        arrived_model = sniff_model(raw, params) if params is not None else None
        seq, in_flight = app.arrive(provider, cfg, self.headers, arrived_model)
        reply, req, fault, violated = None, None, None, []
        t0 = time.monotonic()
        finished = False

        def done():
            # Book-keeping runs just before the last byte (or the close) goes out, so a
            # client that reads its response and then asks for stats sees it counted.
            nonlocal finished
            if finished:
                return
            finished = True
            app.depart(provider, reply, fault.kind if fault else None, arrived_model)
            app.log.write({
                "t": round(time.time(), 3), "provider": provider, "method": method,
                "path": redact_query(self.path), "status": reply.status if reply else None,
                "transport": reply.transport if reply else None,
                "fault": fault.kind if fault else None,
                "model": req.model if req else None,
                "personas": len(req.truth) if req else None,
                "prompt_head": req.prompt[:16] if req else None,
                **({"prompt": req.prompt} if req and app.log.prompts else {}),
                "ms": round((time.monotonic() - t0) * 1000, 2),
                "violations": violated,
            })

        try:
            listing = params is not None and params[:1] == ("models",)
            if params is None or method != ("GET" if listing else "POST"):
                violated.append(app.violate(provider, f"unknown route {method} {path}"))
                reply = unknown_route(provider, method, path)
            elif listing:
                query = dict(parse_qsl(qs, keep_blank_values=True))
                reply, fault, violated = app.list_models(provider, self.headers, query,
                                                         in_flight, seq)
            else:
                query = dict(parse_qsl(qs, keep_blank_values=True))
                reply, req, fault, violated = app.process(
                    provider, params, self.headers, query, raw, in_flight, seq)
            model = req.model if req is not None else None
            if model is None and params is not None and not listing:
                model = sniff_model(raw, params)
            if model:
                with app.lock:
                    app.state[provider].models_seen.add(model)
                    if req is not None and len(app.state[provider].params_by_model) < 50:
                        app.state[provider].params_by_model.setdefault(model, set()).update(req.params)
            if app.in_outage():
                # the server "went down" while this request was in flight
                reply = Reply(reply.status if reply else 500)
                reply.transport = "reset"
            self.transmit(reply, cfg, done)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True
        finally:
            done()

    def hold_until_closed(self, seconds):
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    data = self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    data = b""
                if not data:
                    return          # the client closed its end
                time.sleep(min(left, 0.05))

    def control(self, app, method, path, raw):
        if path == "/_control/health" and method == "GET":
            return self.send_plain(200, {"ok": True, "pid": os.getpid(),
                                         "port": self.server.server_address[1]})
        if path == "/_control/stats" and method == "GET":
            return self.send_plain(200, app.stats())
        if path == "/_control/config" and method == "GET":
            return self.send_plain(200, app.config.describe())
        if path == "/_control/config" and method == "POST":
            try:
                cfg = Config(json.loads(raw or b"{}"))
            except (ValueError, ConfigError) as e:
                return self.send_plain(400, {"error": str(e)})
            app.set_config(cfg)
            return self.send_plain(200, cfg.describe())
        if path == "/_control/reset" and method == "POST":
            app.reset()
            return self.send_plain(200, {"ok": True})
        if path == "/_control/outage" and method == "POST":
            try:
                seconds = float(json.loads(raw or b"{}").get("seconds", 1))
            except (ValueError, AttributeError, TypeError):
                return self.send_plain(400, {"error": "seconds must be a number"})
            app.outage_until = time.monotonic() + max(0.0, seconds)
            return self.send_plain(200, {"ok": True, "seconds": seconds})
        return self.send_plain(404, {"error": f"no such control route: {method} {path}"})

    # -- response writing -------------------------------------------------
    def send_plain(self, status, obj):
        reply = Reply(status, obj)
        reply.server = "fake-provider"
        self.transmit(reply, None, lambda: None)

    def transmit(self, reply, cfg, done):
        """Send reply as its transport mode says; call done() right before the last write."""
        if reply.transport == "reset":
            done()
            return self.reset_socket()
        if reply.transport == "hang":
            # Hold the connection, then close it without a byte of response; a
            # client that gives up first closes it, and then the hang ends there
            self.hold_until_closed(reply.tparams["seconds"])
            done()
            self.close_connection = True
            return None
        body = reply.body
        extra = []
        keepalive = reply.transport == "keepalive"
        if (cfg is not None and cfg.gzip and body and not keepalive
                and accepts_gzip(self.headers.get("Accept-Encoding"))):
            body = gzip.compress(body, compresslevel=1, mtime=0)
            extra = [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        self.server_header = reply.server
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        for k, v in reply.headers + extra:
            self.send_header(k, v)
        if keepalive:
            return self.send_keepalive(body, reply.tparams, done)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        if reply.transport == "slow":
            self.end_headers()
            return self.send_slowly(body, reply.tparams["seconds"], done)
        # One write for headers + body (BaseHTTPRequestHandler buffers headers).
        self._headers_buffer.append(b"\r\n")
        self._headers_buffer.append(body)
        done()
        self.flush_headers()
        return None

    def send_slowly(self, body, seconds, done):
        pieces = max(1, min(len(body), 10))
        step = math.ceil(len(body) / pieces) if body else 0
        pause = seconds / pieces
        for i in range(pieces):
            time.sleep(pause)
            if i == pieces - 1:
                done()
            self.wfile.write(body[i * step:(i + 1) * step])

    def send_keepalive(self, body, p, done):
        """DeepSeek under load: 200 + headers now, blank lines while 'queued', then the body.
        No Content-Length, so the connection closes to end the body."""
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        deadline = time.monotonic() + p["seconds"]
        interval = max(p["interval_ms"], 1) / 1000.0
        while time.monotonic() < deadline:
            self.wfile.write(b"\n")
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        done()
        if p.get("then", "body") == "body":
            self.wfile.write(body)

    def reset_socket(self):
        """Abort with a TCP RST instead of a FIN: SO_LINGER 0, then close.  The fd really
        closes when finish() drops rfile; the server's shutdown(SHUT_WR) then fails
        quietly on the closed socket, so no FIN is sent first."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


class FakeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True           # a hanging handler never blocks exit
    allow_reuse_address = True
    request_queue_size = 512        # many clients connect at once

    def server_bind(self):
        # Skip HTTPServer's getfqdn(): a reverse DNS lookup we do not need.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def verify_request(self, request, client_address):
        # during an outage every new connection is reset at once, as by a
        # server that is down (the requests never reach a handler)
        if self.app.in_outage():
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            return False
        return True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return                  # clients going away is normal in fault tests
        super().handle_error(request, client_address)
