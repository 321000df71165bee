# A JSON API with short TTLs.
#
# Public GET endpoints are cached for seconds, long enough to absorb bursts;
# anything with credentials, and every write, goes to the origin.  Two origin
# pools are spread with a hash director on the URL, so each URL's misses go to
# the same origin (their local caches stay warm).  A 5xx is retried once on
# the other pool, then served stale from grace if there is a copy.
#
# The backends: 10.0.2.10 and 10.0.2.11, port 8000, stand for your two API
# servers; set .host and .port to theirs (docs/vcl-lite.md, "backend") and
# check with `accel -C -f api.vcl`.

vcl 4.1;

import std;
import directors;
import var;

backend api_a {
    .host = "10.0.2.10";
    .port = "8000";
    .connect_timeout = 500ms;
    .first_byte_timeout = 5s;
    .between_bytes_timeout = 2s;
    .max_connections = 200;
    .probe = { .url = "/healthz"; .interval = 2s; .timeout = 500ms; .window = 5; .threshold = 3; }
}
backend api_b {
    .host = "10.0.2.11";
    .port = "8000";
    .connect_timeout = 500ms;
    .first_byte_timeout = 5s;
    .max_connections = 200;
    .probe = { .url = "/healthz"; .interval = 2s; .timeout = 500ms; .window = 5; .threshold = 3; }
}

sub vcl_init {
    new api = directors.hash();
    api.add_backend(api_a, 1);
    api.add_backend(api_b, 1);
    new spare = directors.fallback();
    spare.add_backend(api_b);
    spare.add_backend(api_a);
}

sub vcl_recv {
    set req.backend_hint = api.backend(req.url);
    if (req.restarts > 0) {
        set req.backend_hint = spare.backend();
    }

    # CORS pre-flight answered here, without the origin.
    if (req.method == "OPTIONS" && req.http.Origin) {
        return (synth(204, "No Content"));
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (pass);
    }
    if (req.http.Authorization || req.http.Cookie ~ "session=") {
        return (pass);
    }
    unset req.http.Cookie;
    if (req.url !~ "^/v[0-9]+/") {
        return (synth(404, "Unknown API version"));
    }
    var.set("version", regsub(req.url, "^/(v[0-9]+)/.*$", "\1"));
    set req.url = std.querysort(req.url);
    return (hash);
}

sub vcl_hash {
    # Content negotiation is part of the key.
    hash_data(std.tolower(req.http.Accept));
}

sub vcl_backend_response {
    if (beresp.status >= 500 && bereq.retries < 1) {
        return (retry);
    }
    # The origin can set the TTL in a header; otherwise 5 seconds.
    if (beresp.http.X-Cache-TTL) {
        set beresp.ttl = std.duration(beresp.http.X-Cache-TTL + "s", 5s);
    } else if (beresp.ttl > 60s || !beresp.http.Cache-Control) {
        set beresp.ttl = 5s;
    }
    set beresp.grace = 1m;
    set beresp.keep = 10m;
    set beresp.do_gzip = true;
    if (beresp.status == 404) {
        set beresp.ttl = 1s;
    }
}

sub vcl_backend_error {
    if (bereq.retries < 1) {
        return (retry);
    }
    set beresp.http.Content-Type = "application/json";
    synthetic({"{"error": "upstream unavailable", "status": "} + beresp.status + "}");
    return (deliver);
}

sub vcl_deliver {
    set resp.http.Access-Control-Allow-Origin = "*";
    set resp.http.X-API-Version = var.get("version");
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT (" + obj.hits + ")";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    if (resp.status >= 500 && req.restarts == 0) {
        return (restart);
    }
}

sub vcl_synth {
    set resp.http.Access-Control-Allow-Origin = "*";
    if (resp.status == 204) {
        set resp.http.Access-Control-Allow-Methods = "GET, HEAD, POST, PUT, DELETE, OPTIONS";
        set resp.http.Access-Control-Allow-Headers = req.http.Access-Control-Request-Headers;
        set resp.http.Access-Control-Max-Age = "86400";
        return (deliver);
    }
    set resp.http.Content-Type = "application/json";
    set resp.body = {"{"error": ""} + resp.reason + {"", "status": "} + resp.status + "}";
    return (deliver);
}
