#!/usr/bin/env python3
"""replay-api.py SOCKET BODY_FILE API_VERSION: answer the docker CLI's `ps` on a unix
socket with a recorded `GET /containers/json` body, at once and without an engine.

bench-scale.sh times `docker ps -a` against it with berthd's own answer at 10 and at N
containers: what is left is the CLI's own work (its start, decoding and printing the
rows), the floor under berthd's `ps -a` figures. /_ping is answered with the headers
the CLI reads; any other request gets 404."""
import http.server
import os
import socketserver
import sys

sock, body_file, api = sys.argv[1], sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Api-Version", api)
        self.send_header("Ostype", "linux")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/_ping":
            self.reply(200, b"OK", "text/plain")
        elif path.endswith("/containers/json"):
            with open(body_file, "rb") as f:
                self.reply(200, f.read())
        else:
            self.reply(404, b'{"message":"not recorded"}')


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        conn, _ = self.socket.accept()
        return conn, ("replay", 0)


if os.path.exists(sock):
    os.unlink(sock)
Server(sock, Handler).serve_forever()
