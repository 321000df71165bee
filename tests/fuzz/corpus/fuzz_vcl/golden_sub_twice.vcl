vcl 4.1;
backend default { .host = "127.0.0.1"; }
sub x { }
sub x { }
sub vcl_recv { call x; }
