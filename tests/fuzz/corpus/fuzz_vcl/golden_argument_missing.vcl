vcl 4.1;
backend default { .host = "127.0.0.1"; }
import std;
sub vcl_backend_response {
    set beresp.ttl = std.duration(beresp.http.ttl);
}
