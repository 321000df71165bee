vcl 4.1;
backend default { .host = "127.0.0.1"; }
import std;
sub vcl_recv {
    set req.url = std.tolower(x = req.url);
}
