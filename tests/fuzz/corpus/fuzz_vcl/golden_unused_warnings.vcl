vcl 4.1;
backend default { .host = "127.0.0.1"; }
backend spare { .host = "127.0.0.3"; }
probe p { .url = "/"; }
acl office { "192.0.2.0"/24; }
sub helper { set req.http.x = "1"; }
sub vcl_recv { return (hash); }
