vcl 4.1;
backend default { .host = "127.0.0.1"; }
backend other { .host = "a"; .path = "/run/a.sock"; }
sub vcl_recv { set req.backend_hint = other; }
