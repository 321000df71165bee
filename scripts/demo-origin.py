#!/usr/bin/python3
"""demo-origin.py PORT -- a small, slow "CMS" for `make run`.

Pages take about 200 ms (as if rendered from a database) and are cacheable for
a minute; assets are cacheable for a day; /login sets a cookie and is private.
Every response has an ETag and Last-Modified, and answers If-None-Match /
If-Modified-Since with 304.  Articles carry Surrogate-Key headers for tag
purges.  Standard library only.
"""

import email.utils
import hashlib
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE_DELAY = 0.2
STARTED = time.time()
LAST_MODIFIED = email.utils.formatdate(STARTED - 3600, usegmt=True)

STYLE = b"""body { font-family: sans-serif; max-width: 40em; margin: 2em auto; color: #222; }
header { display: flex; align-items: center; gap: 1em; }
nav a { margin-right: 1em; }
footer { margin-top: 3em; color: #888; font-size: 0.8em; }
"""

SCRIPT = b"""document.addEventListener("DOMContentLoaded", function () {
  var f = document.querySelector("footer");
  if (f) f.textContent += " | page shown at " + new Date().toISOString();
});
"""

LOGO = b"""<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">
<circle cx="32" cy="32" r="30" fill="#2a6"/><path d="M18 44 L32 14 L46 44 Z" fill="#fff"/>
</svg>
"""

ARTICLES = {
    1: ("Caching 101", "A cache keeps a copy so the origin does not have to work twice."),
    2: ("Why purge?", "When an article changes, one PURGE drops the stale copy everywhere."),
    3: ("Surrogate keys", "Tag responses, then purge every page that shows an author at once."),
}


def page(title, body):
    nav = " ".join('<a href="/article/%d">%s</a>' % (n, t) for n, (t, _) in ARTICLES.items())
    html = """<!doctype html>
<html><head><meta charset="utf-8"><title>%s</title>
<link rel="stylesheet" href="/static/site.css"><script src="/static/app.js"></script></head>
<body><header><img src="/static/logo.svg" alt="" width="32"><h1>%s</h1></header>
<nav><a href="/">Home</a> %s <a href="/about">About</a> <a href="/login">Log in</a></nav>
<main>%s</main>
<footer>rendered by the demo origin at %s</footer>
</body></html>
""" % (title, title, nav, body, time.strftime("%H:%M:%S"))
    return html.encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "demo-cms/1.0"

    def log_message(self, fmt, *args):
        sys.stderr.write("origin: %s %s\n" % (self.address_string(), fmt % args))

    def route(self):
        path = self.path.split("?", 1)[0]
        if path == "/":
            items = "".join('<li><a href="/article/%d">%s</a></li>' % (n, t)
                            for n, (t, _) in ARTICLES.items())
            return 200, "text/html; charset=utf-8", page("Demo CMS", "<ul>%s</ul>" % items), \
                {"Cache-Control": "public, max-age=60", "Surrogate-Key": "home"}, True
        if path.startswith("/article/"):
            try:
                n = int(path[len("/article/"):])
                title, text = ARTICLES[n]
            except (ValueError, KeyError):
                return 404, "text/html; charset=utf-8", page("Not found", "<p>No such article.</p>"), \
                    {"Cache-Control": "public, max-age=10"}, True
            return 200, "text/html; charset=utf-8", page(title, "<p>%s</p>" % text), \
                {"Cache-Control": "public, max-age=60",
                 "Surrogate-Key": "article article-%d author-%d" % (n, 1 + n % 2)}, True
        if path == "/about":
            return 200, "text/html; charset=utf-8", page("About", "<p>A slow CMS for the demo.</p>"), \
                {"Cache-Control": "public, max-age=60"}, True
        if path == "/login":
            sid = hashlib.sha1(str(time.time()).encode()).hexdigest()[:16]
            return 200, "text/html; charset=utf-8", page("Log in", "<form>...</form>"), \
                {"Cache-Control": "private, no-store",
                 "Set-Cookie": "sid=%s; Path=/; HttpOnly" % sid}, True
        assets = {"/static/site.css": ("text/css", STYLE),
                  "/static/app.js": ("application/javascript", SCRIPT),
                  "/static/logo.svg": ("image/svg+xml", LOGO)}
        if path in assets:
            ctype, body = assets[path]
            return 200, ctype, body, {"Cache-Control": "public, max-age=86400, immutable"}, False
        return 404, "text/plain", b"not found\n", {"Cache-Control": "public, max-age=10"}, False

    def answer(self, with_body):
        status, ctype, body, extra, slow = self.route()
        if slow:
            time.sleep(PAGE_DELAY)          # the "database"
        # pages change every render (footer time), so the ETag follows the
        # article, not the bytes, like a CMS revision number
        etag = '"%s"' % hashlib.sha1(self.path.split("?", 1)[0].encode()).hexdigest()[:12]
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        not_modified = status == 200 and "Set-Cookie" not in extra and (
            (inm is not None and etag in [t.strip() for t in inm.split(",")]) or
            (inm is None and ims == LAST_MODIFIED))
        self.send_response(304 if not_modified else status)
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", LAST_MODIFIED)
        for k, v in extra.items():
            self.send_header(k, v)
        if not_modified:
            self.end_headers()
            return
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self.answer(True)

    def do_HEAD(self):
        self.answer(False)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer((host, port), Handler)
    sys.stderr.write("demo origin: listening on %s:%d\n" % (host, port))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
