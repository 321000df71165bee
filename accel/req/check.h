/*
 * check.h -- `accel -C`: every check start-up makes, without starting
 * anything (no listener is bound, no store opened, no file created), each
 * problem printed (a policy's with file:line:col), exit 0 or 1.  Also the
 * checks start-up shares with it, and the built-in policy text that `-C`
 * and `-x explain` use without -f.
 */
#ifndef AC_CHECK_H
#define AC_CHECK_H

#include "config.h"

/* -f FILE can be read: 0, or -1 with "-f FILE: No such file or directory". */
int check_policy_file(const struct config *cfg, char *err, size_t errlen);

/* The policy accel runs without -f, as vcl-lite: no subs of its own (so
 * every sub is the built-in one) and one backend per -b ("default" for the
 * first, as varnishd -b names it; `backend default none;` without -b).
 * malloc()ed, NUL-terminated; the caller frees it. */
char *check_builtin_policy_text(const struct config *cfg);

/*
 * accel -C: the policy file is readable and compiles; every backend
 * resolves, its .ssl_ca_file is readable and loads, no backend is a unix
 * socket (.path, not supported yet); every -c certificate and key loads and
 * matches; the files accel will write (-l, -e, -P) and the disk tier's
 * directory (-s disk=) can be written; -u names a user.  Problems go to
 * stderr, the compiled listing (of the built-in policy without -f) to
 * stdout when there are none.  Returns the exit status: 0, 1 (problems),
 * 2 (no origin at all, or -b with -f).
 */
int check_main(const struct config *cfg);

#endif /* AC_CHECK_H */
