# a fragment meant for inclusion: no vcl line needed
sub from_include {
    set req.http.included = "yes";
}
sub vcl_recv {
    set req.http.second = "yes";
}
