/*
 * test_vcl_examples.c -- the policies in docs/examples/ compile and behave
 * as their comments say, and a micro benchmark of the VM on the WordPress
 * example (vcl_recv + vcl_hash + vcl_deliver), printed, never asserted.
 * Run from the repository root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <pthread.h>
#include <time.h>

#include "test_vcl_mock.h"

static struct mock_run run_;

static struct vcl_program *
example(const char *name)
{
    char path[128];
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    int rc;

    snprintf(path, sizeof(path), "docs/examples/%s.vcl", name);
    rc = vcl_compile_file(path, NULL, &p, &d);
    if (rc != 0 || vcl_diags_count(d) != 0)
        fprintf(stderr, "%s:\n%s", path, vcl_diags_text(d));
    assert_int_equal(rc, 0);
    assert_int_equal(vcl_diags_count(d), 0); /* examples compile without warnings */
    vcl_diags_free(&d);
    mock_run_init(&run_);
    return p;
}

static enum vcl_action
go(struct vcl_program *p, enum vcl_sub sub)
{
    assert_int_equal(vcl_run(p, sub, &run_.ctx, &run_.res), 0);
    return run_.res.action;
}

#define R (&run_.m)

static void
wordpress_caches_anonymous_pages_only(void **state)
{
    struct vcl_program *p = example("wordpress");

    (void)state;
    mock_str(R, VCL_VAR_REQ_URL, "/2024/hello/?utm_source=x&p=1");
    mock_set(R, VCL_WHERE_REQ, "Host", "blog.example.com:80");
    mock_set(R, VCL_WHERE_REQ, "Cookie", "_ga=GA1.2; _gid=x");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_HASH);
    assert_string_equal(R->strs[VCL_VAR_REQ_URL], "/2024/hello/?p=1");
    assert_string_equal(mock_hdr(R, VCL_WHERE_REQ, "Host"), "blog.example.com");
    assert_null(mock_hdr(R, VCL_WHERE_REQ, "Cookie"));
    assert_int_equal(go(p, VCL_SUB_HASH), VCL_ACT_LOOKUP);
    assert_string_equal(R->hash, "/2024/hello/?p=1|blog.example.com");
    R->vars[VCL_VAR_OBJ_HITS].u.i = 3;
    assert_int_equal(go(p, VCL_SUB_DELIVER), VCL_ACT_DELIVER);
    assert_string_equal(mock_hdr(R, VCL_WHERE_RESP, "X-Cache"), "HIT");

    mock_run_init(&run_);
    mock_set(R, VCL_WHERE_REQ, "Cookie", "_ga=1; wordpress_logged_in_abc=admin");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_PASS);
    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_URL, "/wp-admin/edit.php");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_PASS);
    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_URL, "/wp-content/themes/x/style.css?ver=6");
    mock_set(R, VCL_WHERE_REQ, "Cookie", "wordpress_logged_in_abc=admin");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_HASH);

    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_METHOD, "PURGE");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_SYNTH); /* 192.0.2.10 is no purger */
    assert_int_equal(run_.res.status, 405);
    R->vars[VCL_VAR_CLIENT_IP].u.ip = (struct vcl_ip){4, {10, 1, 2, 3}, 0};
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_PURGE);

    mock_run_init(&run_);
    R->vars[VCL_VAR_BERESP_TTL].u.d = 0;
    mock_str(R, VCL_VAR_BEREQ_URL, "/about/");
    assert_int_equal(go(p, VCL_SUB_BACKEND_RESPONSE), VCL_ACT_DELIVER);
    assert_true(R->vars[VCL_VAR_BERESP_TTL].u.d == 300);
    assert_true(R->vars[VCL_VAR_BERESP_GRACE].u.d == 86400);
    R->vars[VCL_VAR_BERESP_STATUS].u.i = 503;
    assert_int_equal(go(p, VCL_SUB_BACKEND_RESPONSE), VCL_ACT_PASS);
    assert_true(run_.res.duration == 10);
    vcl_program_release(&p);
}

static void
magento_purges_by_tag_and_hashes_the_vary_cookie(void **state)
{
    struct vcl_program *p = example("magento");
    const struct vcl_director_decl *d;

    (void)state;
    assert_int_equal(vcl_program_director_count(p), 1);
    d = vcl_program_director(p, 0);
    assert_string_equal(d->name, "shop");
    assert_int_equal(d->n_members, 2);
    assert_int_equal(vcl_program_probe_count(p), 1);

    mock_str(R, VCL_VAR_REQ_METHOD, "PURGE");
    R->vars[VCL_VAR_CLIENT_IP].u.ip = (struct vcl_ip){4, {127, 0, 0, 1}, 0};
    mock_set(R, VCL_WHERE_REQ, "X-Magento-Tags-Pattern", "((^|,)cat_p_42(,|$))");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_SYNTH);
    assert_int_equal(run_.res.status, 200);
    assert_string_equal(R->bans, "obj.http.X-Magento-Tags ~ ((^|,)cat_p_42(,|$))");
    assert_int_equal(R->vars[VCL_VAR_REQ_BACKEND_HINT].u.ref.kind, VCL_REF_DIRECTOR);

    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_METHOD, "PURGE");
    R->vars[VCL_VAR_CLIENT_IP].u.ip = (struct vcl_ip){4, {10, 0, 1, 5}, 0};
    mock_set(R, VCL_WHERE_REQ, "xkey-purge", "cat_p_42");
    R->xkey_count = 3;
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_SYNTH);
    assert_memory_equal(run_.res.reason.p, "Purged 3 objects", 16);

    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_URL, "/catalog/shoes.html?b=2&a=1&utm_source=x");
    mock_set(R, VCL_WHERE_REQ, "Cookie", "PHPSESSID=1; X-Magento-Vary=abc123; other=2");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_HASH);
    assert_string_equal(R->strs[VCL_VAR_REQ_URL], "/catalog/shoes.html?a=1&b=2");
    assert_int_equal(go(p, VCL_SUB_HASH), VCL_ACT_LOOKUP);
    assert_string_equal(R->hash, "abc123|/catalog/shoes.html?a=1&b=2|example.com");

    mock_run_init(&run_);
    mock_set(R, VCL_WHERE_BERESP, "X-Magento-Tags", "cat_p_42,cat_c_7");
    assert_int_equal(go(p, VCL_SUB_BACKEND_RESPONSE), VCL_ACT_DELIVER);
    assert_string_equal(mock_hdr(R, VCL_WHERE_BERESP, "xkey"), "cat_p_42 cat_c_7");
    assert_true(R->vars[VCL_VAR_BERESP_GRACE].u.d == 3 * 86400);
    vcl_program_release(&p);
}

static void
api_caches_briefly_and_retries_errors(void **state)
{
    struct vcl_program *p = example("api");

    (void)state;
    assert_int_equal(vcl_program_director_count(p), 2);
    assert_int_equal(vcl_program_director(p, 0)->type, VCL_DIR_HASH);
    assert_int_equal(vcl_program_backend(p, 0)->max_connections, 200);
    assert_true(vcl_program_backend(p, 0)->connect_timeout == 0.5);

    mock_str(R, VCL_VAR_REQ_METHOD, "OPTIONS");
    mock_set(R, VCL_WHERE_REQ, "Origin", "https://app.example.com");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_SYNTH);
    assert_int_equal(run_.res.status, 204);
    R->vars[VCL_VAR_RESP_STATUS].u.i = 204;
    assert_int_equal(go(p, VCL_SUB_SYNTH), VCL_ACT_DELIVER);
    assert_string_equal(mock_hdr(R, VCL_WHERE_RESP, "Access-Control-Max-Age"), "86400");

    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_URL, "/v2/items?z=1&a=2");
    mock_set(R, VCL_WHERE_REQ, "Cookie", "theme=dark");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_HASH);
    assert_string_equal(R->strs[VCL_VAR_REQ_URL], "/v2/items?a=2&z=1");
    assert_int_equal(go(p, VCL_SUB_DELIVER), VCL_ACT_DELIVER);
    assert_string_equal(mock_hdr(R, VCL_WHERE_RESP, "X-API-Version"), "v2");
    R->vars[VCL_VAR_RESP_STATUS].u.i = 502;
    assert_int_equal(go(p, VCL_SUB_DELIVER), VCL_ACT_RESTART);

    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_URL, "/v1/x");
    mock_set(R, VCL_WHERE_REQ, "Authorization", "Bearer t");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_PASS);

    mock_run_init(&run_);
    mock_set(R, VCL_WHERE_BERESP, "X-Cache-TTL", "30");
    assert_int_equal(go(p, VCL_SUB_BACKEND_RESPONSE), VCL_ACT_DELIVER);
    assert_true(R->vars[VCL_VAR_BERESP_TTL].u.d == 30);
    R->vars[VCL_VAR_BERESP_STATUS].u.i = 503;
    assert_int_equal(go(p, VCL_SUB_BACKEND_RESPONSE), VCL_ACT_RETRY);
    R->vars[VCL_VAR_BEREQ_RETRIES].u.i = 1;
    R->vars[VCL_VAR_BERESP_STATUS].u.i = 503;
    assert_int_equal(go(p, VCL_SUB_BACKEND_ERROR), VCL_ACT_DELIVER);
    assert_string_equal(R->synth, "{\"error\": \"upstream unavailable\", \"status\": 503}");
    vcl_program_release(&p);
}

static void
static_site_keeps_assets_long(void **state)
{
    struct vcl_program *p = example("static");

    (void)state;
    mock_str(R, VCL_VAR_REQ_METHOD, "POST");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_SYNTH);
    assert_int_equal(run_.res.status, 405);
    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_URL, "/IMG/Logo.PNG?utm=1&v=3&x=y");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_HASH);
    assert_string_equal(R->strs[VCL_VAR_REQ_URL], "/img/logo.png?v=3");
    assert_int_equal(go(p, VCL_SUB_HASH), VCL_ACT_LOOKUP);
    assert_string_equal(R->hash, "/img/logo.png?v=3");
    mock_run_init(&run_);
    mock_str(R, VCL_VAR_REQ_URL, "/private/x");
    assert_int_equal(go(p, VCL_SUB_RECV), VCL_ACT_SYNTH);
    assert_int_equal(run_.res.status, 403);

    mock_run_init(&run_);
    mock_str(R, VCL_VAR_BEREQ_URL, "/img/a.jpg");
    mock_set(R, VCL_WHERE_BERESP, "Content-Type", "image/jpeg");
    mock_set(R, VCL_WHERE_BERESP, "Set-Cookie", "x=1");
    assert_int_equal(go(p, VCL_SUB_BACKEND_RESPONSE), VCL_ACT_DELIVER);
    assert_true(R->vars[VCL_VAR_BERESP_TTL].u.d == 30 * 86400);
    assert_false(R->vars[VCL_VAR_BERESP_DO_BROTLI].u.b);
    assert_null(mock_hdr(R, VCL_WHERE_BERESP, "Set-Cookie"));
    assert_string_equal(mock_hdr(R, VCL_WHERE_BERESP, "Cache-Control"), "public, max-age=2592000");
    vcl_program_release(&p);
}

/* ------------------------------------------------------------ benchmark */

/* A lean host for timing: headers are borrowed pointers (no copies), as the
 * daemon's header table would hold them. */
struct bhdr {
    enum vcl_where w;
    struct vcl_str n, v;
};
struct bhost {
    struct bhdr h[24];
    unsigned n, n0;
    struct vcl_value vars[VCL_VAR__MAX];
    unsigned hashes;
};

static int
b_get_var(void *priv, enum vcl_var v, struct vcl_value *out)
{
    *out = ((struct bhost *)priv)->vars[v];
    return 0;
}

static int
b_set_var(void *priv, enum vcl_var v, const struct vcl_value *val)
{
    ((struct bhost *)priv)->vars[v] = *val;
    return 0;
}

static struct bhdr *
b_find(struct bhost *b, enum vcl_where w, struct vcl_str n)
{
    for (unsigned i = 0; i < b->n; i++)
        if (b->h[i].w == w && b->h[i].n.len == n.len && strncasecmp(b->h[i].n.p, n.p, n.len) == 0)
            return &b->h[i];
    return NULL;
}

static int
b_get_header(void *priv, enum vcl_where w, struct vcl_str n, struct vcl_str *out)
{
    struct bhdr *h = b_find(priv, w, n);

    *out = h ? h->v : (struct vcl_str){NULL, 0};
    return 0;
}

static int
b_set_header(void *priv, enum vcl_where w, struct vcl_str n, struct vcl_str v)
{
    struct bhost *b = priv;
    struct bhdr *h = b_find(b, w, n);

    if (h == NULL && b->n < 24)
        h = &b->h[b->n++];
    if (h != NULL)
        *h = (struct bhdr){w, n, v};
    return 0;
}

static int
b_unset_header(void *priv, enum vcl_where w, struct vcl_str n)
{
    struct bhdr *h = b_find(priv, w, n);

    if (h != NULL)
        h->n.len = 0;
    return 0;
}

static int
b_hash(void *priv, struct vcl_str s)
{
    (void)s;
    ((struct bhost *)priv)->hashes++;
    return 0;
}

static const struct vcl_host_ops bench_ops = {
    .get_var = b_get_var,
    .set_var = b_set_var,
    .get_header = b_get_header,
    .set_header = b_set_header,
    .unset_header = b_unset_header,
    .hash_data = b_hash,
};

static void
wordpress_vm_time_per_request_is_printed(void **state)
{
    struct vcl_program *p = example("wordpress");
    static struct bhost b;
    static char ws[8192];
    struct vcl_arena arena = {ws, sizeof(ws), 0};
    struct vcl_ctx ctx;
    struct vcl_result res;
    struct timespec t0, t1;
    const int n = 100000;
    double ns;

    (void)state;
    memset(&b, 0, sizeof(b));
    b.vars[VCL_VAR_REQ_METHOD] = (struct vcl_value){VCL_T_STRING, {.s = VCL_LIT("GET")}};
    b.vars[VCL_VAR_REQ_URL] =
        (struct vcl_value){VCL_T_STRING, {.s = VCL_LIT("/2024/05/hello-world/")}};
    b.vars[VCL_VAR_REQ_PROTO] = (struct vcl_value){VCL_T_STRING, {.s = VCL_LIT("HTTP/1.1")}};
    b.vars[VCL_VAR_OBJ_HITS] = (struct vcl_value){VCL_T_INT, {.i = 5}};
    b.vars[VCL_VAR_CLIENT_IP].type = VCL_T_IP;
    b.h[0] = (struct bhdr){VCL_WHERE_REQ, VCL_LIT("Host"), VCL_LIT("blog.example.com")};
    b.h[1] = (struct bhdr){VCL_WHERE_REQ, VCL_LIT("Cookie"), VCL_LIT("_ga=GA1.2.3; _gid=GA1.4")};
    b.h[2] = (struct bhdr){VCL_WHERE_REQ, VCL_LIT("Accept-Encoding"), VCL_LIT("gzip, br")};
    b.h[3] = (struct bhdr){VCL_WHERE_RESP, VCL_LIT("Server"), VCL_LIT("nginx")};
    b.h[4] = (struct bhdr){VCL_WHERE_RESP, VCL_LIT("X-Powered-By"), VCL_LIT("PHP/8.2")};
    b.n0 = b.n = 5;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        b.n = b.n0;
        arena.used = 0;
        vcl_ctx_init(&ctx, &bench_ops, &b, &arena);
        if (vcl_run(p, VCL_SUB_RECV, &ctx, &res) != 0 || res.action != VCL_ACT_HASH ||
            vcl_run(p, VCL_SUB_HASH, &ctx, &res) != 0 ||
            vcl_run(p, VCL_SUB_DELIVER, &ctx, &res) != 0)
            fail();
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / n;
    /* printed for docs/performance.md; machines differ, so never asserted */
    printf("vcl bench: wordpress.vcl vcl_recv+vcl_hash+vcl_deliver: %.0f ns/request "
           "(%d requests, arena %zu bytes used)\n",
           ns, n, arena.used + (arena.size - ctx._top));
    assert_true(b.hashes > 0);
    vcl_program_release(&p);
}

struct thread_arg {
    struct vcl_program *p;
    int ok;
};

static void *
thread_main(void *arg)
{
    struct thread_arg *ta = arg;
    struct mock *m = malloc(sizeof(*m));
    static __thread char ws[4096];
    struct vcl_arena a = {ws, sizeof(ws), 0};
    struct vcl_ctx ctx;
    struct vcl_result res;

    for (int i = 0; i < 2000; i++) {
        mock_init(m);
        mock_str(m, VCL_VAR_REQ_URL, i % 2 ? "/wp-admin/" : "/page/?utm_source=x");
        a.used = 0;
        vcl_ctx_init(&ctx, &mock_ops, m, &a);
        if (vcl_run(ta->p, VCL_SUB_RECV, &ctx, &res) != 0 ||
            res.action != (i % 2 ? VCL_ACT_PASS : VCL_ACT_HASH))
            break;
        if (i % 2 == 0 && strcmp(m->strs[VCL_VAR_REQ_URL], "/page/") != 0)
            break;
        ta->ok++;
    }
    free(m);
    return NULL;
}

/* One immutable program, four threads, each with its own ctx and arena. */
static void
program_runs_on_many_threads_at_once(void **state)
{
    struct vcl_program *p = example("wordpress");
    pthread_t t[4];
    struct thread_arg ta[4];

    (void)state;
    for (int i = 0; i < 4; i++) {
        ta[i].p = vcl_program_ref(p);
        ta[i].ok = 0;
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, &ta[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(ta[i].ok, 2000);
        vcl_program_release(&ta[i].p);
    }
    vcl_program_release(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wordpress_caches_anonymous_pages_only),
        cmocka_unit_test(magento_purges_by_tag_and_hashes_the_vary_cookie),
        cmocka_unit_test(api_caches_briefly_and_retries_errors),
        cmocka_unit_test(static_site_keeps_assets_long),
        cmocka_unit_test(program_runs_on_many_threads_at_once),
        cmocka_unit_test(wordpress_vm_time_per_request_is_printed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
