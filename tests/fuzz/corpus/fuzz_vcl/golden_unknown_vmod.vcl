vcl 4.1;
backend default { .host = "127.0.0.1"; }
import geoip2;
sub vcl_recv {
    set req.http.c = geoip2.country(client.ip);
}
