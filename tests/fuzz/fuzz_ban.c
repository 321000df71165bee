/*
 * fuzz_ban.c -- libFuzzer target for the ban expression parser (accel/cache/ban.c):
 * any bytes in, never a crash, every allocation freed.  A ban that parses is
 * evaluated against a fixed fake object, and its canonical text must parse
 * again to the same canonical text (ban.h promises that round trip).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ban.h"

/* An invariant for every input; a violation aborts and libFuzzer keeps the input. */
#define FUZZ_ASSERT(e) do { if (!(e)) abort(); } while (0)

static bool
on_obj_header(void *arg, struct ac_slice name, struct ac_slice *value)
{
    (void)arg;
    if (ac_slice_caseeq(name, AC_LIT("content-type"))) {
        *value = AC_LIT("image/png");
        return true;
    }
    if (ac_slice_caseeq(name, AC_LIT("x-empty"))) {
        *value = AC_LIT("");
        return true;
    }
    return false;
}

static bool
on_req_header(void *arg, struct ac_slice name, struct ac_slice *value)
{
    (void)arg;
    if (ac_slice_caseeq(name, AC_LIT("cookie"))) {
        *value = AC_LIT("session=abc; theme=dark");
        return true;
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ban *b = NULL, *b2 = NULL;
    char err[256];
    struct ban_obj o = {
        .url = AC_LIT("/blog/2024/a.png?x=1"),
        .host = AC_LIT("www.example.com"),
        .status = 200,
        .obj_header = on_obj_header,
        .req_header = on_req_header,
        .arg = NULL,
        .ttl_left = 120,
        .age = 30,
    };

    if (ban_parse(AC_SLICE((const char *)data, size), &b, err, sizeof err) != 0) {
        FUZZ_ASSERT(strncmp(err, "col ", 4) == 0);     /* every error names its column */
        return 0;
    }
    (void)ban_match(b, &o);
    (void)ban_uses_req(b);
    if (ban_parse(AC_SLICE(ban_text(b), strlen(ban_text(b))), &b2, err, sizeof err) != 0) {
        fprintf(stderr, "canonical text does not parse: %s\n  %s\n", ban_text(b), err);
        abort();
    }
    if (strcmp(ban_text(b), ban_text(b2)) != 0 || ban_uses_req(b) != ban_uses_req(b2) ||
        ban_match(b, &o) != ban_match(b2, &o)) {
        fprintf(stderr, "round trip differs:\n  %s\n  %s\n", ban_text(b), ban_text(b2));
        abort();
    }
    ban_free(&b2);
    ban_free(&b);
    return 0;
}
