vcl 4.1;
backend default { .host = "127.0.0.1"; }
import std;
sub vcl_synth {
    synthetic(std.fileread("tests/unit/vcl_golden/no-such-file.html"));
}
