vcl 4.1;
backend default { .host = "127.0.0.1"; }
sub set_ttl {
    set beresp.ttl = 10m;
}
sub vcl_recv {
    call set_ttl;
}
