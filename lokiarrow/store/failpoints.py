"""Crash points for the crash tests: `LOKIARROW_FAILPOINT=<where>:<step>` makes the process exit at
once (as a SIGKILL would leave it) when it reaches that step. Unset, each check is one comparison.

Steps: `compactor:written|published|swapped|collecting` (store/compactor.py), `flush:written`
(store/tenant.py: a flush's files are written, its WAL segments not yet retired).
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)
_FAILPOINT = os.environ.get("LOKIARROW_FAILPOINT", "")


def failpoint(name: str) -> None:
    if _FAILPOINT == name:
        log.warning("failpoint %s: exiting", name)
        os._exit(137)
