vcl 4.1;
backend default { .host = "127.0.0.1"; }
probe p {
    .url = "/";
    .expect = 200;
}
backend b { .host = "h"; .probe = p; }
