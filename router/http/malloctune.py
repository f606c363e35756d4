"""glibc malloc settings for a server that takes request bodies of megabytes.

The JSON parser (orjson's yyjson) asks for a work area of about twelve times the document:
48 MB for a 4 MB body. glibc maps anything above its largest mmap threshold (32 MB) afresh
and unmaps it on free, so every such request faulted in the pages it touched (about a
thousand for a 4 MB body, 2 to 3 ms of kernel CPU, a quarter of the request's cost): the CPU
per MB of body grew with the body. Served from the heap instead, the area is reused from one
request to the next. So the heap serves every size (`M_MMAP_MAX` 0) and its free top is
given back to the system past 64 MB (`M_TRIM_THRESHOLD`), the highest glibc's own dynamic
setting reaches. Memory untouched by a request is never resident either way.

Only glibc has these settings; elsewhere, and when the operator has set malloc's own
environment variables, nothing is changed.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_MAX = -4
TRIM_BYTES = 64 * 2**20
_OPERATOR_SETTINGS = ("GLIBC_TUNABLES", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")


def tune() -> bool:
    """Call once per server process; True if the settings were applied."""
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in _OPERATOR_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))
