#!/usr/bin/env python3
"""instant-engine.py SOCKET API_VERSION [PS_BODY_FILE]: an "engine" that answers the
docker CLI's `run --rm`, `run -d`, `create` and `exec` requests at once, without doing
anything, on a unix socket; with PS_BODY_FILE, `GET /containers/json` (`ps`) answers
that recorded body.

bench.sh times those commands against it: what is left is the CLI's own work (its
start, its requests, the attach and exec hijacks, its waits), the floor under every
engine's figures for them (this server's own latency, well under a millisecond a
request, included). Containers do not exist: every create answers the same ID, every
attach and exec stream ends at once, every wait answers exit code 0. bench-scale.sh
times `docker ps -a` against berthd's recorded answer at 10 and at N containers: the
CLI's own decoding and printing of the rows."""
import http.server
import json
import os
import socketserver
import sys

sock, api = sys.argv[1], sys.argv[2]
ps_body = sys.argv[3] if len(sys.argv) > 3 else None
CID = "0" * 64


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body=b"", ctype="application/json"):
        self.send_response(code)
        self.send_header("Api-Version", api)
        self.send_header("Ostype", "linux")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def hijack(self):
        # the attach and exec start upgrade the connection; the stream ends at once
        self.wfile.write(b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
                         b"Connection: Upgrade\r\nUpgrade: tcp\r\nApi-Version: " + api.encode() + b"\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/_ping":
            self.reply(200, b"OK", "text/plain")
        elif ps_body and path.endswith("/containers/json"):
            with open(ps_body, "rb") as f:
                self.reply(200, f.read())
        elif "/exec/" in path and path.endswith("/json"):
            self.reply(200, json.dumps({"ID": "e", "Running": False, "ExitCode": 0}).encode())
        elif path.endswith("/json"):
            self.reply(200, json.dumps({"Id": CID, "State": {"Running": True, "Status": "running"},
                                        "Config": {"Tty": False}, "HostConfig": {}}).encode())
        else:
            self.reply(404, b'{"message":"not here"}')

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if path.endswith("/containers/create"):
            self.reply(201, json.dumps({"Id": CID, "Warnings": []}).encode())
        elif path.endswith("/attach") or ("/exec/" in path and path.endswith("/start")):
            self.hijack()
        elif path.endswith("/wait"):
            self.reply(200, b'{"StatusCode":0,"Error":null}\n')
        elif path.endswith("/start"):
            self.send_response(204)
            self.send_header("Api-Version", api)
            self.end_headers()
        elif path.endswith("/exec"):
            self.reply(201, b'{"Id":"e"}')
        else:
            self.reply(404, b'{"message":"not here"}')


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("instant", 0)


if os.path.exists(sock):
    os.unlink(sock)
Server(sock, Handler).serve_forever()
