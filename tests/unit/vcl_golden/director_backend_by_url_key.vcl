vcl 4.1;
backend default { .host = "127.0.0.1"; }
import directors;
sub vcl_init {
    new sh = directors.shard();
    sh.add_backend(default);
}
sub vcl_recv {
    set req.backend_hint = sh.backend(by = URL, key = "x");
}
