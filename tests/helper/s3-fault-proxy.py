#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""s3-fault-proxy.py - an HTTP/1.1 proxy on 127.0.0.1 that injects faults
between libckpt's S3 client and the real RADOS Gateway.

    s3-fault-proxy.py UPSTREAM_PORT PORT_FILE LOG_FILE [RULE...]

It listens on a free loopback port (written to PORT_FILE once it listens),
forwards every request byte for byte (the SigV4 signature covers the Host
header, which stays the proxy's: RGW checks the signature against what it
receives) and logs one line per request: "METHOD TARGET ACTION", and the
names of its signed headers in LOG_FILE.signed.

A RULE is KIND:COUNT[:MATCH]: the first COUNT requests whose request line
contains MATCH (default: all) get KIND instead of a plain forward; COUNT
"all" means every one.  Kinds:
    500       answer 500 InternalError (and close)
    503       answer 503 SlowDown (and close)
    reset     close the connection with a TCP RST before answering
    stall     accept the request and never answer
    corrupt   flip one byte of the request body, then forward
    cut       forward the answer's head and half its body, then RST
    lose      forward the request, then RST instead of the answer (the
              service acted; the client cannot know)
    hold      forward the request only once the file LOG_FILE.go exists
              (a test makes another client act in between)
"""
import os
import socket
import socketserver
import struct
import sys
import threading
import time

lock = threading.Lock()
rules = []
log_file = None
signed_file = None
upstream_port = 0


def parse_rule(text):
    parts = text.split(":", 2)
    kind = parts[0]
    if kind not in ("500", "503", "reset", "stall", "corrupt", "cut",
                    "lose", "hold"):
        raise SystemExit("s3-fault-proxy: unknown fault kind %r" % kind)
    count = parts[1] if len(parts) > 1 else "1"
    count = -1 if count == "all" else int(count)
    match = parts[2] if len(parts) > 2 else ""
    return [kind, count, match]


def choose(request_line):
    with lock:
        for r in rules:
            if r[1] != 0 and r[2] in request_line:
                if r[1] > 0:
                    r[1] -= 1
                return r[0]
    return "forward"


def log(line):
    with lock:
        log_file.write(line + "\n")
        log_file.flush()


def read_head(f):
    """Reads a message head; returns (first line, raw head bytes) or None."""
    lines = []
    while True:
        line = f.readline(65537)
        if not line:
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            break
    return lines[0].decode("latin-1").strip(), b"".join(lines)


def header(head, name):
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().decode("latin-1")
    return None


def read_body(f, head, request_method=None, status=None):
    """The raw body bytes of a message, as framed."""
    if request_method == "HEAD" or status in (204, 304) or \
            (status is not None and 100 <= status < 200):
        return b""
    te = header(head, b"transfer-encoding")
    if te and "chunked" in te.lower():
        out = []
        while True:
            size_line = f.readline(1026)
            out.append(size_line)
            n = int(size_line.split(b";")[0].strip(), 16)
            if n == 0:
                while True:
                    t = f.readline(65537)
                    out.append(t)
                    if t in (b"\r\n", b"\n", b""):
                        return b"".join(out)
            out.append(f.read(n + 2))
    cl = header(head, b"content-length")
    if cl is not None:
        return f.read(int(cl))
    if status is None:
        return b""
    return f.read()


def error_answer(status, reason, code, message):
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
            "<Message>%s</Message></Error>" % (code, message)).encode()
    return ("HTTP/1.1 %d %s\r\nContent-Type: application/xml\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n" %
            (status, reason, len(body))).encode() + body


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    sock.close()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        client = self.request
        cf = client.makefile("rb")
        up = None
        uf = None
        try:
            while True:
                got = read_head(cf)
                if got is None:
                    return
                line, head = got
                method = line.split(" ", 1)[0]
                body = read_body(cf, head)
                action = choose(line)
                log("%s %s" % (line.rsplit(" ", 1)[0], action))
                auth = header(head, b"authorization") or ""
                signed = auth.partition("SignedHeaders=")[2].split(",")[0]
                with lock:
                    signed_file.write(signed + "\n")
                    signed_file.flush()
                if action == "500":
                    client.sendall(error_answer(500, "Internal Server Error",
                                                "InternalError", "injected"))
                    return
                if action == "503":
                    client.sendall(error_answer(503, "Slow Down", "SlowDown",
                                                "Please reduce your request "
                                                "rate."))
                    return
                if action == "reset":
                    rst_close(client)
                    return
                if action == "stall":
                    client.settimeout(1)
                    end = time.time() + 600
                    while time.time() < end:
                        try:
                            if not client.recv(65536):
                                return
                        except socket.timeout:
                            pass
                    return
                if action == "hold":
                    while not os.path.exists(log_file.name + ".go"):
                        time.sleep(0.02)
                if action == "corrupt" and body:
                    b = bytearray(body)
                    b[len(b) // 2] ^= 0x01
                    body = bytes(b)
                if up is None:
                    up = socket.create_connection(("127.0.0.1",
                                                   upstream_port))
                    uf = up.makefile("rb")
                up.sendall(head + body)
                while True:
                    rgot = read_head(uf)
                    if rgot is None:
                        return
                    status = int(rgot[0].split(" ", 2)[1])
                    if status >= 200:
                        break
                rhead = rgot[1]
                rbody = read_body(uf, rhead, method, status)
                if action == "lose":
                    rst_close(client)
                    return
                if action == "cut" and len(rbody) > 1:
                    client.sendall(rhead + rbody[:len(rbody) // 2])
                    rst_close(client)
                    return
                client.sendall(rhead + rbody)
        except (OSError, ValueError):
            return
        finally:
            if up is not None:
                up.close()


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global upstream_port, log_file, signed_file
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    upstream_port = int(sys.argv[1])
    port_file = sys.argv[2]
    log_file = open(sys.argv[3], "a")
    signed_file = open(sys.argv[3] + ".signed", "a")
    for r in sys.argv[4:]:
        rules.append(parse_rule(r))
    srv = Server(("127.0.0.1", 0), Handler)
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    import os
    os.rename(port_file + ".tmp", port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
