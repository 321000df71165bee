/*
 * fuzz_vcl.c -- libFuzzer target for the whole vcl-lite compiler: source
 * text in, never a crash, every allocation freed.  Programs that compile are
 * also run (every built-in sub) against a small host with a tiny arena, so
 * the VM's limits (arena full, regex limits, restarts) are exercised too.
 * Includes and std.fileread() get an in-memory reader: no file system access.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vcl.h"

static int
fz_reader(void *priv, const char *path, char **text, size_t *len)
{
    static const char part[] = "sub from_include { set req.http.x = \"1\"; }\n";

    (void)priv;
    if (strstr(path, "part") == NULL)
        return VCL_EIO;
    *text = malloc(sizeof(part));
    if (*text == NULL)
        return VCL_ENOMEM;
    memcpy(*text, part, sizeof(part));
    *len = sizeof(part) - 1;
    return 0;
}

static int
fz_get_var(void *priv, enum vcl_var v, struct vcl_value *out)
{
    (void)priv;
    switch (vcl_var_type(v)) {
    case VCL_T_STRING:
        out->u.s = VCL_LIT("/fuzz?a=1&b=2");
        break;
    case VCL_T_IP:
        out->u.ip = (struct vcl_ip){4, {127, 0, 0, 1}, 0};
        break;
    case VCL_T_INT:
        out->u.i = 1;
        break;
    default:
        break;
    }
    return 0;
}

static int
fz_set_var(void *priv, enum vcl_var v, const struct vcl_value *val)
{
    (void)priv;
    (void)v;
    (void)val;
    return 0;
}

static int
fz_get_header(void *priv, enum vcl_where w, struct vcl_str n, struct vcl_str *out)
{
    (void)priv;
    (void)w;
    *out = n.len % 2 ? VCL_LIT("a=b; c=d") : (struct vcl_str){NULL, 0};
    return 0;
}

static int
fz_set_header(void *priv, enum vcl_where w, struct vcl_str n, struct vcl_str v)
{
    (void)priv;
    (void)w;
    (void)n;
    (void)v;
    return 0;
}

static int
fz_unset_header(void *priv, enum vcl_where w, struct vcl_str n)
{
    (void)priv;
    (void)w;
    (void)n;
    return 0;
}

static const struct vcl_host_ops fz_ops = {
    .get_var = fz_get_var,
    .set_var = fz_set_var,
    .get_header = fz_get_header,
    .set_header = fz_set_header,
    .unset_header = fz_unset_header,
};

/* An invariant that must hold for every input; a violation is a crash
 * libFuzzer reports with the input. */
#define FUZZ_ASSERT(e) do { if (!(e)) abort(); } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vcl_options opt;
    struct vcl_program *p = NULL;
    struct vcl_diags *d = NULL;
    static char ws[2048];

    vcl_options_init(&opt);
    opt.reader = fz_reader;
    opt.unknown_vmods_stub = size % 2 == 1;
    int rc = vcl_compile_string("fuzz/main.vcl", (const char *)data, size, &opt, &p, &d);

    /* the compiler's contract: a program exactly when it says so, and then
     * no error among the diagnostics; an error otherwise, with a place */
    FUZZ_ASSERT(d != NULL);
    FUZZ_ASSERT((rc == 0) == (p != NULL));
    FUZZ_ASSERT((rc == 0) == !vcl_diags_has_error(d));
    if (rc == 0) {
        char *dump = vcl_program_dump(p);

        FUZZ_ASSERT(dump != NULL);
        free(dump);
        for (int s = 0; s < VCL_SUB__MAX; s++) {
            struct vcl_arena a = {ws, sizeof(ws), 0};
            struct vcl_ctx ctx;
            struct vcl_result res;

            vcl_ctx_init(&ctx, &fz_ops, NULL, &a);
            int r = vcl_run(p, (enum vcl_sub)s, &ctx, &res);
            /* a run never leaves its arena and always names an action */
            FUZZ_ASSERT(a.used <= a.size);
            FUZZ_ASSERT(res.action < VCL_ACT__MAX);
            FUZZ_ASSERT(r == 0 || res.action == VCL_ACT_FAIL);
        }
        vcl_program_release(&p);
    }
    (void)vcl_diags_text(d);
    vcl_diags_free(&d);
    return 0;
}
