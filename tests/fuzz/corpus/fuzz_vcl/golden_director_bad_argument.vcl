vcl 4.1;
backend default { .host = "127.0.0.1"; }
import directors;
sub vcl_init {
    new rr = directors.round_robin(1);
}
