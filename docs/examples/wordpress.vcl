# WordPress behind accel.
#
# Anonymous visitors get cached pages; logged-in users, the admin, previews,
# comment posters and WooCommerce carts go to WordPress every time.  Tracking
# cookies and query parameters are stripped so they don't split the cache.
# Editors purge a page with `PURGE /path` from an allowed address.
#
# The backend: WordPress on 127.0.0.1:8081 as shipped (the port `make run`'s
# demo origin uses, never accel's own 8080); set .host and .port to your
# server (docs/vcl-lite.md, "backend") and check with `accel -C -f`.

vcl 4.1;

import std;

backend wordpress {
    .host = "127.0.0.1";
    .port = "8081";
    .connect_timeout = 2s;
    .first_byte_timeout = 60s;
    .probe = {
        .url = "/wp-login.php";
        .interval = 5s;
        .timeout = 2s;
        .window = 5;
        .threshold = 3;
    }
}

acl purgers {
    "localhost";
    "10.0.0.0"/8;
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(405, "Not allowed"));
        }
        return (purge);
    }

    # Normalise the host and drop the port.
    set req.http.Host = regsub(req.http.Host, ":[0-9]+$", "");

    # Marketing parameters never change the page.
    if (req.url ~ "(\?|&)(utm_[a-z]+|gclid|fbclid|mc_[a-z]+)=") {
        set req.url = regsuball(req.url, "(utm_[a-z]+|gclid|fbclid|mc_[a-z]+)=[^&]+&?", "");
        set req.url = regsub(req.url, "(\?|&)$", "");
    }

    # Never cache the admin, logins, previews, the REST API with nonces, or carts.
    if (req.url ~ "^/(wp-(login|admin|cron)|xmlrpc\.php)" ||
        req.url ~ "preview=true" ||
        req.url ~ "^/(cart|checkout|my-account)/" ||
        req.url ~ "add-to-cart=") {
        return (pass);
    }

    # Static files are the same for everybody.
    if (req.url ~ "\.(css|js|png|gif|jpe?g|webp|svg|ico|woff2?)(\?.*)?$") {
        unset req.http.Cookie;
        return (hash);
    }

    # Keep only the cookies WordPress needs to recognise a logged-in user.
    if (req.http.Cookie) {
        set req.http.Cookie = regsuball(req.http.Cookie, "(^|;\s*)(_ga|_gid|_fbp|has_js|__utm[a-z]+)=[^;]*", "");
        set req.http.Cookie = regsub(req.http.Cookie, "^;\s*", "");
        if (req.http.Cookie ~ "wordpress_(logged_in|sec)_|wp-postpass_|comment_author_|woocommerce_items_in_cart") {
            return (pass);
        }
        if (req.http.Cookie ~ "^\s*$") {
            unset req.http.Cookie;
        }
    }
    return (hash);
}

sub vcl_hash {
    # Serve HTTPS and HTTP separately when a TLS terminator says so.
    if (req.http.X-Forwarded-Proto) {
        hash_data(req.http.X-Forwarded-Proto);
    }
}

sub vcl_backend_response {
    if (bereq.url ~ "\.(css|js|png|gif|jpe?g|webp|svg|ico|woff2?)(\?.*)?$") {
        unset beresp.http.Set-Cookie;
        set beresp.ttl = 7d;
    } else if (beresp.status == 200 && !beresp.http.Set-Cookie && beresp.ttl < 5m) {
        # WordPress rarely sends max-age; pages are fine for five minutes.
        set beresp.ttl = 5m;
    }
    # Serve stale pages for a day if WordPress is down or slow.
    set beresp.grace = 1d;
    if (beresp.status >= 500) {
        set beresp.ttl = 0s;
        return (pass(10s));
    }
}

sub vcl_deliver {
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    unset resp.http.X-Powered-By;
    unset resp.http.Server;
    unset resp.http.Link;
}
