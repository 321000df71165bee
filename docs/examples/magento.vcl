# A Drupal/Magento-style shop with cache tags.
#
# The application tags every page with the products and categories on it
# (X-Magento-Tags / Cache-Tags: "cat_p_42 cat_c_7 ...").  accel stores them as
# surrogate keys, so a product update purges exactly the pages that show it:
#   PURGE with "X-Magento-Tags-Pattern: cat_p_42"   (ban by tag, Magento style)
#   PURGE with "xkey-purge: cat_p_42 cat_c_7"        (xkey, instant)
# Customer-specific blocks are split with the X-Magento-Vary cookie.
#
# The backends: 10.0.1.11 and 10.0.1.12, port 80, stand for your web
# servers; set .host and .port to theirs (docs/vcl-lite.md, "backend") and
# check with `accel -C -f magento.vcl`.

vcl 4.0;

import std;
import xkey;
import directors;

probe health {
    .url = "/health_check.php";
    .timeout = 2s;
    .interval = 5s;
    .window = 10;
    .threshold = 5;
}

backend web1 { .host = "10.0.1.11"; .port = "80"; .probe = health; .first_byte_timeout = 600s; }
backend web2 { .host = "10.0.1.12"; .port = "80"; .probe = health; .first_byte_timeout = 600s; }

acl purge {
    "localhost";
    "10.0.1.0"/24;
}

sub vcl_init {
    new shop = directors.round_robin();
    shop.add_backend(web1);
    shop.add_backend(web2);
}

sub vcl_recv {
    set req.backend_hint = shop.backend();

    if (req.method == "PURGE") {
        if (client.ip !~ purge) {
            return (synth(405, "Method not allowed"));
        }
        if (req.http.xkey-purge) {
            set req.http.n = xkey.purge(req.http.xkey-purge);
            return (synth(200, "Purged " + req.http.n + " objects"));
        }
        if (!req.http.X-Magento-Tags-Pattern && !req.http.X-Pool) {
            return (synth(400, "X-Magento-Tags-Pattern or X-Pool header required"));
        }
        if (req.http.X-Magento-Tags-Pattern) {
            ban("obj.http.X-Magento-Tags ~ " + req.http.X-Magento-Tags-Pattern);
        }
        if (req.http.X-Pool) {
            ban("obj.http.X-Pool ~ " + req.http.X-Pool);
        }
        return (synth(200, "Purged"));
    }

    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }

    # Checkout, customer and admin pages are personal.
    if (req.url ~ "^/(checkout|customer|admin|catalogsearch)" || req.url ~ "/(rest|graphql)/") {
        return (pass);
    }
    if (req.url ~ "/health_check\.php$") {
        return (pass);
    }

    # Sorted query strings: ?b=1&a=2 and ?a=2&b=1 are one object.
    set req.url = std.querysort(req.url);
    set req.url = regsuball(req.url, "(\?|&)(gclid|cx|ie|cof|siteurl|zanpid|origin|fbclid|mc_[a-z]+|utm_[a-z]+)=[^&]*", "\1");
    set req.url = regsub(req.url, "[?&]+$", "");

    # Static files: no cookies, long TTL.
    if (req.url ~ "^/(pub/)?(media|static)/") {
        unset req.http.Cookie;
        unset req.http.Https;
        return (hash);
    }

    # Authenticated GraphQL and bearer tokens bypass the cache.
    if (req.http.Authorization ~ "^Bearer") {
        return (pass);
    }
    # Magento's page cache is safe with cookies: the vary cookie is hashed below.
    return (hash);
}

sub vcl_hash {
    if (req.http.cookie ~ "X-Magento-Vary=") {
        hash_data(regsub(req.http.cookie, "^.*?X-Magento-Vary=([^;]+);*.*$", "\1"));
    }
    if (req.http.X-Forwarded-Proto) {
        hash_data(req.http.X-Forwarded-Proto);
    }
    if (req.url ~ "/graphql") {
        hash_data(req.http.Store);
        hash_data(req.http.Content-Currency);
    }
}

sub vcl_backend_response {
    # Keep the tags for bans and purges, and as surrogate keys.
    if (beresp.http.X-Magento-Tags) {
        set beresp.http.xkey = regsuball(beresp.http.X-Magento-Tags, ",", " ");
    }
    if (beresp.http.Cache-Tags) {
        set beresp.http.xkey = beresp.http.Cache-Tags;
    }
    set beresp.grace = 3d;

    if (bereq.url ~ "\.js$" || beresp.http.content-type ~ "text") {
        set beresp.do_gzip = true;
        set beresp.do_brotli = true;
    }
    if (beresp.http.X-Magento-Debug) {
        set beresp.http.X-Magento-Cache-Control = beresp.http.Cache-Control;
    }
    # Cache only successful answers and 404s.
    if (beresp.status != 200 && beresp.status != 404) {
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
        return (deliver);
    } else if (beresp.http.Cache-Control ~ "private") {
        set beresp.uncacheable = true;
        set beresp.ttl = 86400s;
        return (deliver);
    }
    # Cacheable pages lose their cookies.
    if (bereq.method == "GET" || bereq.method == "HEAD") {
        unset beresp.http.set-cookie;
    }
    if (beresp.ttl <= 0s || beresp.http.Surrogate-control ~ "no-store" ||
        (!beresp.http.Surrogate-Control && beresp.http.Cache-Control ~ "no-cache|no-store") ||
        beresp.http.Vary == "*") {
        set beresp.ttl = 120s;
        set beresp.uncacheable = true;
    }
    return (deliver);
}

sub vcl_hit {
    if (obj.ttl >= 0s) {
        return (deliver);
    }
    # Stale: serve it while the backends are up only for a short grace.
    if (std.healthy(req.backend_hint)) {
        if (obj.ttl + 300s > 0s) {
            return (deliver);
        }
        return (miss);
    }
    return (deliver);
}

sub vcl_deliver {
    if (resp.http.X-Magento-Debug) {
        if (obj.hits > 0) {
            set resp.http.X-Magento-Cache-Debug = "HIT";
        } else {
            set resp.http.X-Magento-Cache-Debug = "MISS";
        }
    } else {
        unset resp.http.Age;
    }
    if (resp.http.Cache-Control !~ "private" && req.url !~ "^/(pub/)?(media|static)/") {
        set resp.http.Pragma = "no-cache";
        set resp.http.Expires = "-1";
        set resp.http.Cache-Control = "no-store, no-cache, must-revalidate, max-age=0";
    }
    unset resp.http.X-Magento-Debug;
    unset resp.http.X-Magento-Tags;
    unset resp.http.xkey;
    unset resp.http.X-Powered-By;
    unset resp.http.Server;
    unset resp.http.Via;
    unset resp.http.Link;
}
