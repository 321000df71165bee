#!/usr/bin/python3
"""hit-ratio.py [ADMIN_ADDR] -- accel's cache hit ratio from the admin
listener's GET /stats (standard library only).

    python3 scripts/hit-ratio.py 127.0.0.1:6082
    hits 18  misses 3  stale 0  passes 1  -> hit ratio 81.8% of 22 requests

The ratio counts fresh and stale hits over every request that went through
the cache (hits, misses, passes).  With -S, set ADMIN_SECRET.
"""

import json
import os
import sys
import urllib.request

addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:6082"
req = urllib.request.Request("http://%s/stats" % addr)
if os.environ.get("ADMIN_SECRET"):
    req.add_header("X-Admin-Secret", os.environ["ADMIN_SECRET"])
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        stats = json.load(r)
except OSError as e:
    sys.exit("hit-ratio: cannot read http://%s/stats: %s (is accel running with -T %s?)"
             % (addr, e, addr))
c = stats.get("counters", {})
hits, stale = c.get("cache_hit", 0), c.get("cache_stale", 0)
misses, passes = c.get("cache_miss", 0), c.get("cache_pass", 0)
total = hits + stale + misses + passes
ratio = 100.0 * (hits + stale) / total if total else 0.0
print("hits %d  misses %d  stale %d  passes %d  -> hit ratio %.1f%% of %d requests"
      % (hits, misses, stale, passes, ratio, total))
