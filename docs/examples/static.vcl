# A static-asset site (a CDN origin shield for images, fonts, CSS, JS).
#
# Everything is public and versioned by URL, so objects live for a long time
# and the cache key ignores cookies and tracking parameters.  Text is stored
# compressed (gzip and brotli variants); images are stored as they come.
#
# The backend: as shipped, the asset server is 127.0.0.1:8081 (the port
# `make run`'s demo origin uses) and is asked for the name
# assets.example.com (.host_header); set .host, .port and .host_header to
# yours (docs/vcl-lite.md, "backend") and check with `accel -C -f`.

vcl 4.1;

import std;

backend assets {
    .host = "127.0.0.1";
    .port = "8081";
    .host_header = "assets.example.com";
    .connect_timeout = 1s;
    .first_byte_timeout = 15s;
}

sub vcl_recv {
    if (req.method != "GET" && req.method != "HEAD") {
        return (synth(405, "Read-only"));
    }
    unset req.http.Cookie;
    unset req.http.Authorization;
    # Drop query strings except a version parameter.
    if (req.url ~ "\?") {
        if (req.url ~ "[?&]v=") {
            set req.url = regsub(req.url, "\?.*?(v=[^&]*).*$", "?\1");
        } else {
            set req.url = regsub(req.url, "\?.*$", "");
        }
    }
    # Paths are case-insensitive on the origin.
    set req.url = std.tolower(req.url);
    if (std.fnmatch("/private/*", req.url)) {
        return (synth(403, "Forbidden"));
    }
    return (hash);
}

sub vcl_hash {
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_response {
    unset beresp.http.Set-Cookie;
    if (beresp.status == 200 || beresp.status == 301 || beresp.status == 404) {
        if (bereq.url ~ "\.(woff2?|ttf|otf|eot)$" || bereq.url ~ "[?&]v=") {
            set beresp.ttl = 365d;
        } else if (bereq.url ~ "\.(png|jpe?g|gif|webp|avif|svg|ico)$") {
            set beresp.ttl = 30d;
        } else {
            set beresp.ttl = 1d;
        }
        if (beresp.status == 404) {
            set beresp.ttl = 1m;
        }
    }
    if (beresp.http.Content-Type ~ "^(text/|application/(javascript|json|xml)|image/svg)") {
        set beresp.do_gzip = true;
        set beresp.do_brotli = true;
    }
    set beresp.grace = 7d;
    set beresp.keep = 7d;
    set beresp.http.Cache-Control = "public, max-age=" + std.integer(regsub(beresp.ttl + "", "\..*$", ""), 0);
    return (deliver);
}

sub vcl_deliver {
    set resp.http.Access-Control-Allow-Origin = "*";
    set resp.http.Timing-Allow-Origin = "*";
    unset resp.http.Server;
    unset resp.http.X-Amz-Request-Id;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
