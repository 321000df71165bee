vcl 4.1;
backend default { .host = "127.0.0.1"; }
acl a { "10.0.0.0"/8; }
sub vcl_recv {
    if (a == a) {
        return (pass);
    }
}
