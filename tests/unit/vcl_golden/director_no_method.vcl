vcl 4.1;
backend default { .host = "127.0.0.1"; }
import directors;
sub vcl_init {
    new vdir = directors.round_robin();
    vdir.add_backend(default);
}
sub vcl_recv {
    set req.backend_hint = vdir.pick();
}
