vcl 4.1;
backend default { .host = "127.0.0.1"; }
probe p {
    .request = 5;
}
backend b { .host = "h"; .probe = p; }
