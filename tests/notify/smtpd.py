#!/usr/bin/env python3
"""A minimal SMTP server for the notify suite (no aiosmtpd offline): speaks enough of
RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA, QUIT) and appends each message to OUT as JSON lines.
With CERT and KEY it offers STARTTLS (RFC 3207) with that certificate, and records whether
each message came over TLS.
Usage: smtpd.py OUT [CERT KEY] PORT_FILE"""
import json, os, socketserver, ssl, sys

out = sys.argv[1]
port_file = sys.argv[-1]
tls = sys.argv[2:4] if len(sys.argv) == 5 else None

class H(socketserver.StreamRequestHandler):
    def handle(self):
        w = lambda s: self.wfile.write((s + "\r\n").encode())
        w("220 localhost ESMTP test")
        mail_from, rcpt, secure = "", [], False
        while True:
            line = self.rfile.readline().decode(errors="replace").rstrip("\r\n")
            if not line:
                return
            cmd = line[:4].upper()
            if cmd in ("EHLO", "HELO"):
                w("250-localhost")
                if tls and not secure:
                    w("250-STARTTLS")
                w("250 8BITMIME")
            elif cmd == "STAR" and tls and not secure:
                w("220 go ahead")
                self.wfile.flush()
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*tls)
                try:
                    self.connection = ctx.wrap_socket(self.connection, server_side=True)
                except (ssl.SSLError, OSError):
                    return
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb", buffering=0)
                secure, mail_from, rcpt = True, "", []
            elif cmd == "MAIL":
                mail_from = line.split(":", 1)[1].strip(" <>"); rcpt = []; w("250 ok")
            elif cmd == "RCPT":
                rcpt.append(line.split(":", 1)[1].strip(" <>")); w("250 ok")
            elif cmd == "DATA":
                w("354 go on")
                data = []
                while True:
                    l = self.rfile.readline().decode(errors="replace")
                    if l.rstrip("\r\n") == ".":
                        break
                    data.append(l[1:] if l.startswith("..") else l)
                with open(out, "a") as f:
                    f.write(json.dumps({"from": mail_from, "to": rcpt, "tls": secure, "data": "".join(data)}) + "\n")
                w("250 queued")
            elif cmd == "QUIT":
                w("221 bye"); return
            else:
                w("500 unknown")

srv = socketserver.TCPServer(("127.0.0.1", 0), H)
with open(port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(port_file + ".tmp", port_file)
srv.serve_forever()
