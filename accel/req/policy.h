/*
 * policy.h -- the daemon side of vcl-lite: loading and reloading the policy
 * program, the host operations through which the VM reaches a request, and
 * the offline tools (-C, -x builtin, -x explain).
 *
 * Lifetimes: each worker holds a reference on the program it hands to new
 * requests (w->vcl); a request takes its own reference when it starts and
 * keeps that program to its end, so a reload never changes a request in
 * flight.  Strings the VM makes live in the session's arena until the
 * request ends.
 */
#ifndef AC_POLICY_H
#define AC_POLICY_H

#include "ac.h"
#include "config.h"

#include <stdio.h>

#include "vcl.h"

struct req;
struct wrk;

/* Compile the policy at path with the configuration's options; print
 * diagnostics (warnings and errors, with line:col) to diag.  Returns the
 * program (one reference) or NULL. */
struct vcl_program *policy_compile(const struct config *cfg, const char *path, FILE *diag);
/* (path NULL: the built-in policy in front of the -b origins, as
 * check_builtin_policy_text() writes it.) */

/* Offline tools: return the process exit code. */
int policy_main_explain(const struct config *cfg, int argc, char **argv); /* -x explain */

/* Worker side: install p (takes a reference) as the program for new
 * requests on w; the previous one is released when its requests end.  Any
 * thread: the swap happens on w's own thread. */
void policy_worker_install(struct wrk *w, struct vcl_program *p);

/* Request side (worker thread). */
/* Start using the worker's current program for this request (no-op without
 * a policy or when already started). */
void pol_begin(struct req *req);
/* The same with a given program (background fetches take their parent's). */
void pol_begin_from(struct req *req, struct vcl_program *p);
/* Release the program, reset the arena and the header overlays. */
void pol_end(struct req *req);
/* Run sub; on a VM failure logs why and returns VCL_ACT_FAIL. */
enum vcl_action pol_run(struct req *req, enum vcl_sub sub, struct vcl_result *res);
/* True when the session runs a policy. */
#define pol_active(s) ((s)->prog != NULL)

/* Header overlays for bereq.http.* and resp.http.* changes made by the
 * policy: a field named here is dropped from what accel would send, and a
 * non-NULL value is added. */
struct pol_hdrop {
    struct ac_slice name;
    struct ac_slice value;      /* p == NULL: unset */
};
#define POL_MAX_HDROPS 24

/* A NUL-terminated copy of v in the request arena (NULL when full). */
const char *pol_cstr(struct req *req, struct vcl_str v);

/* Does the overlay mention name?  (Then the original field is not sent.) */
bool pol_overlay_has(const struct pol_hdrop *ops, unsigned n, struct ac_slice name);

#endif /* AC_POLICY_H */
