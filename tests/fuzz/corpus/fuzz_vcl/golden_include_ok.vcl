vcl 4.1;
backend default { .host = "127.0.0.1"; }
include "include_part.inc";
sub vcl_recv {
    call from_include;
}
