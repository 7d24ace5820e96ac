#!/usr/bin/env python3
"""A webhook receiver (and, at /slack and /teams, a chat webhook stand-in) for the notify suite: verifies the Standard Webhooks signature
(HMAC-SHA256 over "id.timestamp.body"), refuses timestamps older than 5 minutes (replays),
dedupes by webhook-id, and appends what it accepted to OUT as JSON lines.
With CERT and KEY it serves HTTPS with that certificate (TLS tests).
Usage: receiver.py SECRET_FILE OUT [CERT KEY] PORT_FILE"""
import base64, hashlib, hmac, http.server, json, ssl, sys, time

secret_file, out = sys.argv[1:3]
port_file = sys.argv[-1]
tls = sys.argv[3:5] if len(sys.argv) == 6 else None
secret = base64.b64decode(open(secret_file).read().strip().removeprefix("whsec_"))
seen = set()

class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path in ("/slack", "/teams"):
            # Chat webhooks are not signed; the suite checks their shape.
            with open(out, "a") as f:
                f.write(json.dumps({"path": self.path, "body": json.loads(body)}) + "\n")
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
            return
        wid = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "0")
        sigs = self.headers.get("webhook-signature", "").split()
        mac = hmac.new(secret, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
        want = "v1," + base64.b64encode(mac).decode()
        verdict = None
        if not any(hmac.compare_digest(s, want) for s in sigs):
            verdict = (401, "bad signature")
        elif abs(time.time() - int(ts)) > 300:
            verdict = (401, "timestamp outside the 5 minute window: replay refused")
        if verdict:
            self.send_response(verdict[0]); self.end_headers()
            self.wfile.write(verdict[1].encode())
            with open(out + ".refused", "a") as f:
                f.write(json.dumps({"id": wid, "why": verdict[1]}) + "\n")
            return
        dup = wid in seen
        seen.add(wid)
        with open(out, "a") as f:
            f.write(json.dumps({"id": wid, "dup": dup, "at": time.time(),
                                "body": json.loads(body)}) + "\n")
        self.send_response(204); self.end_headers()

    def log_message(self, *a):
        pass

srv = http.server.HTTPServer(("127.0.0.1", 0), H)
if tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
