/*
 * probe.h -- active health probes.  One thread with its own libev loop runs
 * every probe of the current pool set: non-blocking connect, send, read the
 * status line, all under the probe's timeout, every interval.  Results go
 * into the backend's window (pool_be_probe_result); workers only read the
 * resulting atomics, so a probe never blocks a request.
 */
#ifndef AC_PROBE_H
#define AC_PROBE_H

#include "pool.h"

/* Start the probe thread (idle until a set is installed).  0 or -1. */
int probe_start(void);
/* Probe ps's backends from now on, instead of the previous set's (takes a
 * reference; NULL: probe nothing).  Any thread. */
void probe_install(struct pool_set *ps);
/* Wait until every probe of the last installed set has had its first
 * result (at most the longest probe .timeout, plus a little): so accel does
 * not start, or switch on reload, with healthy servers still counted sick
 * because nobody asked them yet.  True when they all answered in time. */
bool probe_wait_first(const struct pool_set *ps);
/* Stop probing, join the thread, release the set. */
void probe_stop(void);

/* Parse a probe answer's status line ("HTTP/1.1 200 OK\r\n") in buf: the
 * status code, 0 when more bytes are needed, -1 when it is not HTTP. */
int probe_parse_status(const char *buf, size_t len);

#endif /* AC_PROBE_H */
