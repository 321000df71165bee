# site.vcl -- a starting point: accel in front of one web server.
#
# As shipped, the backend is the demo origin that `make run` starts on
# 127.0.0.1:8081, so this file works right after `make run` (stop its accel
# first, or give another -a):
#
#     build/accel -a 127.0.0.1:8090 -f docs/examples/site.vcl
#
# For your site, set .host and .port to your server (docs/vcl-lite.md,
# "backend"), and check the file with `build/accel -C -f site.vcl`: it
# resolves the host and reports anything start-up would refuse.
#
# What it does: pages are cached for what the server's Cache-Control says
# (five minutes when it says nothing and sets no cookie); static files are
# the same for everyone and are kept a day; logins and the admin area are
# never cached; tracking parameters do not split the cache; loopback
# clients can PURGE a URL; a stale page is served for an hour when the
# server is down.

vcl 4.1;

import std;

backend default {
    .host = "127.0.0.1";
    .port = "8081";
    .connect_timeout = 2s;
    .first_byte_timeout = 30s;
    .probe = {
        .url = "/";
        .interval = 5s;
        .timeout = 2s;
    }
}

acl purgers {
    "127.0.0.1";
    "::1";
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        return (purge);
    }
    # Marketing parameters never change the page.
    if (req.url ~ "(\?|&)(utm_[a-z]+|gclid|fbclid)=") {
        set req.url = regsuball(req.url, "(utm_[a-z]+|gclid|fbclid)=[^&]*&?", "");
        set req.url = regsub(req.url, "(\?|&)$", "");
    }
    if (req.url ~ "^/(login|logout|admin|account)") {
        return (pass);
    }
    if (req.url ~ "\.(css|js|png|gif|jpe?g|webp|svg|ico|woff2?)(\?.*)?$") {
        unset req.http.Cookie;
        return (hash);
    }
    # Falls through to the built-in vcl_recv: requests with cookies or
    # credentials pass, the others are looked up.
}

sub vcl_backend_response {
    if (bereq.url ~ "\.(css|js|png|gif|jpe?g|webp|svg|ico|woff2?)(\?.*)?$") {
        unset beresp.http.Set-Cookie;
        set beresp.ttl = 1d;
    } else if (beresp.status == 200 && !beresp.http.Set-Cookie && !beresp.http.Cache-Control) {
        set beresp.ttl = 5m;
    }
    set beresp.grace = 1h;
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
