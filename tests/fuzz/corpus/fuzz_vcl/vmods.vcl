vcl 4.1;
backend b { .host = "h"; }
import std;
import cookie;
import var;
import xkey;
sub vcl_recv {
  cookie.parse(req.http.cookie);
  cookie.keep_re("^s");
  set req.http.c = cookie.get_string() + std.querysort(req.url) + regsuball(req.url, "(a|b)", "<\1>");
  var.set("x", req.url);
  set req.http.n = xkey.purge(var.get("x")) + std.integer("5", 0) * 2;
  if (client.ip ~ "127.0.0.1") {}
}
