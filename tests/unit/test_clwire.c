/*
 * test_clwire.c -- the cluster stream's entries and ids (accel/cluster/clwire.c)
 * and the view over members (accel/cluster/clview.c): pure parts of the bus.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clview.h"
#include "clwire.h"

#define S(lit) AC_SLICE(lit, sizeof(lit) - 1)

/* Encode e, then decode the field/value pairs as XREAD would give them. */
static int
round_trip(const struct clwire_entry *e, struct clwire_entry *out, const char **why)
{
    const char *argv[CLWIRE_NFIELDS];
    size_t len[CLWIRE_NFIELDS];
    struct ac_slice fv[CLWIRE_NFIELDS];
    int n = clwire_encode(e, argv, len);

    assert_int_equal(n, CLWIRE_NFIELDS);
    for (int i = 0; i < n; i++)
        fv[i] = AC_SLICE(argv[i], len[i]);
    return clwire_decode(fv, (size_t)n, out, why);
}

static void
entries_survive_encoding_with_binary_args(void **state)
{
    static const char key[] = "test.example\0/a?b=\xff";
    struct clwire_entry e = { CLWIRE_KEY, CLWIRE_SOFT, S("127.0.0.1:8080"),
                              AC_SLICE(key, sizeof(key) - 1) }, d;
    const char *why;

    (void)state;
    assert_int_equal(round_trip(&e, &d, &why), 0);
    assert_int_equal(d.op, CLWIRE_KEY);
    assert_int_equal(d.flags, CLWIRE_SOFT);
    assert_true(ac_slice_eq(d.node, e.node));
    assert_true(ac_slice_eq(d.arg, e.arg));
    e = (struct clwire_entry){ CLWIRE_ALL, 0, S("n1"), AC_SLICE("", 0) };
    assert_int_equal(round_trip(&e, &d, &why), 0);
    assert_int_equal(d.op, CLWIRE_ALL);
    assert_int_equal(d.arg.len, 0);
    e = (struct clwire_entry){ CLWIRE_BAN, 0, S("n1"), S("req.url ~ \"^/b/\"") };
    assert_int_equal(round_trip(&e, &d, &why), 0);
    assert_string_equal(clwire_op_name(d.op), "ban");
}

static void
bad_entries_are_refused_with_a_reason(void **state)
{
    struct clwire_entry d;
    const char *why;
    const struct ac_slice missing_node[] = { S("v"), S("1"), S("op"), S("key"), S("arg"), S("k") };
    const struct ac_slice bad_version[] = { S("v"), S("2"), S("op"), S("key"), S("node"), S("n"),
                                            S("arg"), S("k") };
    const struct ac_slice bad_op[] = { S("v"), S("1"), S("op"), S("zap"), S("node"), S("n"),
                                       S("arg"), S("k") };
    const struct ac_slice twice[] = { S("v"), S("1"), S("op"), S("key"), S("op"), S("tag"),
                                      S("node"), S("n"), S("arg"), S("k") };
    const struct ac_slice bad_soft[] = { S("v"), S("1"), S("op"), S("key"), S("soft"), S("yes"),
                                         S("node"), S("n"), S("arg"), S("k") };
    const struct ac_slice empty_arg[] = { S("v"), S("1"), S("op"), S("tag"), S("node"), S("n"),
                                          S("arg"), S("") };
    const struct ac_slice later[] = { S("x-new"), S("?"), S("v"), S("1"), S("op"), S("tag"),
                                      S("node"), S("n"), S("arg"), S("t") };

    (void)state;
    assert_int_equal(clwire_decode(missing_node, 6, &d, &why), -1);
    assert_string_equal(why, "missing field");
    assert_int_equal(clwire_decode(bad_version, 8, &d, &why), -1);
    assert_string_equal(why, "unknown version");
    assert_int_equal(clwire_decode(bad_op, 8, &d, &why), -1);
    assert_string_equal(why, "unknown op");
    assert_int_equal(clwire_decode(twice, 10, &d, &why), -1);
    assert_string_equal(why, "repeated field");
    assert_int_equal(clwire_decode(bad_soft, 10, &d, &why), -1);
    assert_int_equal(clwire_decode(empty_arg, 8, &d, &why), -1);
    assert_int_equal(clwire_decode(later, 9, &d, &why), -1);    /* odd */
    /* a field of a later version is ignored */
    assert_int_equal(clwire_decode(later, 10, &d, &why), 0);
    assert_int_equal(d.op, CLWIRE_TAG);
}

static void
stream_ids_parse_strictly_and_order(void **state)
{
    struct clwire_id a, b;
    char buf[CLWIRE_ID_STRMAX];

    (void)state;
    assert_int_equal(clwire_id_parse(S("1796517646058-3"), &a), 0);
    assert_true(a.ms == 1796517646058ull && a.seq == 3);
    assert_string_equal(clwire_id_fmt(a, buf), "1796517646058-3");
    assert_int_equal(clwire_id_parse(S("42"), &b), 0);
    assert_true(b.ms == 42 && b.seq == 0);
    assert_true(clwire_id_cmp(b, a) < 0 && clwire_id_cmp(a, b) > 0 && clwire_id_cmp(a, a) == 0);
    assert_int_equal(clwire_id_parse(S("18446744073709551615-18446744073709551615"), &a), 0);
    assert_int_equal(clwire_id_parse(S("18446744073709551616-0"), &a), -1);    /* overflow */
    assert_int_equal(clwire_id_parse(S("1-"), &a), -1);
    assert_int_equal(clwire_id_parse(S("-1"), &a), -1);
    assert_int_equal(clwire_id_parse(S("1-2-3"), &a), -1);
    assert_int_equal(clwire_id_parse(S("+1-2"), &a), -1);
    assert_int_equal(clwire_id_parse(S(""), &a), -1);
    assert_int_equal(clwire_id_parse(S("1 -2"), &a), -1);
}

/* ---- the view over members */

static int
owner_of(const struct clview *v, unsigned i)
{
    char k[32];
    int n = snprintf(k, sizeof(k), "test.example/obj/%u", i);
    return clview_owner(v, AC_SLICE(k, (size_t)n), NULL, NULL);
}

static void
every_node_names_the_same_owner_whatever_the_order(void **state)
{
    const char *a[] = { "10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80" };
    const char *b[] = { "10.0.0.3:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80" };
    struct clview v1, v2;

    (void)state;
    clview_build(&v1, a, 3);
    clview_build(&v2, b, 4);        /* another order, a duplicate */
    assert_int_equal(v2.n, 3);
    for (unsigned i = 0; i < 2000; i++)
        assert_string_equal(v1.id[owner_of(&v1, i)], v2.id[owner_of(&v2, i)]);
    clview_free(&v1);
    clview_free(&v2);
}

static void
a_member_leaving_moves_only_its_keys(void **state)
{
    const char *three[] = { "n1", "n2", "n3" }, *two[] = { "n1", "n3" };
    struct clview v3, v2;
    unsigned moved = 0, had = 0, cnt[3] = { 0 };

    (void)state;
    clview_build(&v3, three, 3);
    clview_build(&v2, two, 2);
    for (unsigned i = 0; i < 6000; i++) {
        const char *o3 = v3.id[owner_of(&v3, i)], *o2 = v2.id[owner_of(&v2, i)];
        cnt[owner_of(&v3, i)]++;
        if (strcmp(o3, "n2") == 0)
            had++;
        else if (strcmp(o3, o2) != 0)
            moved++;
    }
    assert_int_equal(moved, 0);     /* n1's and n3's keys stay where they were */
    for (unsigned m = 0; m < 3; m++)
        assert_true(cnt[m] > 6000 / 3 / 2 && cnt[m] < 6000 / 3 * 2);
    assert_true(had > 0);
    clview_free(&v3);
    clview_free(&v2);
}

static bool
not_n2(unsigned m, void *arg)
{
    const struct clview *v = arg;
    return strcmp(v->id[m], "n2") != 0;
}

static void
an_unusable_member_hands_its_keys_to_the_next(void **state)
{
    const char *three[] = { "n1", "n2", "n3" }, *two[] = { "n1", "n3" };
    struct clview v3, v2;

    (void)state;
    clview_build(&v3, three, 3);
    clview_build(&v2, two, 2);
    for (unsigned i = 0; i < 2000; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "test.example/obj/%u", i);
        int m = clview_owner(&v3, AC_SLICE(k, (size_t)n), not_n2, &v3);
        /* skipping n2 on the ring is what removing it does */
        assert_string_equal(v3.id[m], v2.id[owner_of(&v2, i)]);
    }
    assert_int_equal(clview_find(&v3, "n3"), 2);
    assert_int_equal(clview_find(&v3, "n9"), -1);
    clview_free(&v3);
    clview_free(&v2);
}

static void
an_empty_view_owns_nothing(void **state)
{
    struct clview v;

    (void)state;
    clview_build(&v, NULL, 0);
    assert_int_equal(v.n, 0);
    assert_int_equal(clview_owner(&v, AC_LIT("k"), NULL, NULL), -1);
    clview_free(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(entries_survive_encoding_with_binary_args),
        cmocka_unit_test(bad_entries_are_refused_with_a_reason),
        cmocka_unit_test(stream_ids_parse_strictly_and_order),
        cmocka_unit_test(every_node_names_the_same_owner_whatever_the_order),
        cmocka_unit_test(a_member_leaving_moves_only_its_keys),
        cmocka_unit_test(an_unusable_member_hands_its_keys_to_the_next),
        cmocka_unit_test(an_empty_view_owns_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
