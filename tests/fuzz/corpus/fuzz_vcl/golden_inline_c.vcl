vcl 4.1;
backend default { .host = "127.0.0.1"; }
C{
    #include <stdio.h>
}C
sub vcl_recv { }
