vcl 4.1;
backend b { .host = "h"; }
sub vcl_recv {
    include "part.vcl";
}
include "part.vcl";
