/*
 * vcl_conv.c -- conversions between text and values (IP, duration, time),
 * and regex compilation.  Used by the compiler (literals) and the VM
 * (std.ip, std.duration, string conversions).
 */
#include "vcl.h"
#include "vcl_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <arpa/inet.h>
#include <ctype.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

bool
vcl_parse_ip(const char *s, size_t len, struct vcl_ip *out)
{
    char buf[64];

    memset(out, 0, sizeof(*out));
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = 4;
        return true;
    }
    if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = 6;
        return true;
    }
    memset(out, 0, sizeof(*out));
    return false;
}

int
vcl_fmt_ip(const struct vcl_ip *ip, char *buf, size_t len)
{
    if (ip->family == 4 && inet_ntop(AF_INET, ip->addr, buf, (socklen_t)len) != NULL)
        return 0;
    if (ip->family == 6 && inet_ntop(AF_INET6, ip->addr, buf, (socklen_t)len) != NULL)
        return 0;
    if (len > 0)
        buf[0] = '\0';
    return -1;
}

/* "1.5s", "10m", "100ms", "2w": a number and a unit (std.duration). */
bool
vcl_parse_duration(const char *s, size_t len, double *out)
{
    char buf[64], *end;
    double v, mult;
    size_t i = 0;

    while (i < len && isspace((unsigned char)s[i]))
        i++;
    s += i;
    len -= i;
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    v = strtod(buf, &end);
    if (end == buf)
        return false;
    if (strcmp(end, "ms") == 0)
        mult = 0.001;
    else if (strcmp(end, "s") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60;
    else if (strcmp(end, "h") == 0)
        mult = 3600;
    else if (strcmp(end, "d") == 0)
        mult = 86400;
    else if (strcmp(end, "w") == 0)
        mult = 604800;
    else if (strcmp(end, "y") == 0)
        mult = 31536000;
    else
        return false;
    *out = v * mult;
    return true;
}

/* Compiles a regex once, at load, with JIT when the platform has it.
 * Varnish compiles VCL regexes without flags; (?i) works inline. */
int
vcl_re_compile(struct vcl_program *p, const char *src, size_t len, char *err, size_t errlen,
               uint32_t *idx)
{
    pcre2_code *code;
    int ec;
    PCRE2_SIZE eo;
    uint32_t ncap = 0;
    struct vcl_regex *r;

    code = pcre2_compile((PCRE2_SPTR)src, len, 0, &ec, &eo, NULL);
    if (code == NULL) {
        char msg[200];

        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, errlen, "%s at offset %zu", msg, (size_t)eo);
        return -1;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &ncap);
    if (p->nre == p->capre) {
        p->capre = p->capre ? p->capre * 2 : 16;
        p->re = vcl_xrealloc(p->re, p->capre * sizeof(*p->re));
    }
    r = &p->re[p->nre];
    r->src = vcl_pool_strndup(p->pool, src, len);
    r->code = code;
    r->ncap = ncap;
    if (ncap + 1 > p->max_ovec)
        p->max_ovec = ncap + 1;
    *idx = (uint32_t)p->nre++;
    return 0;
}

void
vcl_re_free_all(struct vcl_program *p)
{
    for (size_t i = 0; i < p->nre; i++)
        pcre2_code_free(p->re[i].code);
    free(p->re);
    p->re = NULL;
    p->nre = 0;
}
