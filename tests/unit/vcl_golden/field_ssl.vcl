vcl 4.1;
backend default { .host = "127.0.0.1"; }
backend other { .host = "a"; .ssl = 2; }
