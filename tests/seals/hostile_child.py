"""Verify one PDF in a process of its own under a memory ceiling, and print what it cost as JSON.

``python -m tests.seals.hostile_child PDF TRUST_JSON LIMIT_MIB [unlimited]`` prints
``{"verdict", "sub_indication", "detail", "seconds", "peak_rss_mib"}``. The address-space limit is a
safety net for the machine running the tests; the test asserts on the peak resident size, which is
what a hub process would really have spent on the file. ``unlimited`` lifts pyHanko's decode limits:
the control that shows the harness notices a file that does blow up.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def main(pdf_path: str, trust_path: str, limit_mib: str, *flags: str) -> None:
    ceiling = int(limit_mib) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
    from pyhanko.pdf_utils.decode_limits import DecodeLimits  # imported under the ceiling

    from seals.verify import DECODE_LIMITS, TrustSettings, Verifier

    trust = json.loads(Path(trust_path).read_text())
    verifier = Verifier(
        TrustSettings(
            roots=tuple(bytes.fromhex(h) for h in trust["roots"]),
            crls=tuple(bytes.fromhex(h) for h in trust["crls"]),
            other_certs=tuple(bytes.fromhex(h) for h in trust["other_certs"]),
        ),
        decode_limits=DecodeLimits.for_trusted_input() if "unlimited" in flags else DECODE_LIMITS,
    )
    data = Path(pdf_path).read_bytes()
    started = time.monotonic()
    report = verifier.verify(data)
    seconds = time.monotonic() - started
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec, so a big
    # pytest process would make every child look big. VmHWM is this address space's own peak.
    status = Path("/proc/self/status").read_text()
    peak_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
    os.write(
        1,
        json.dumps(
            {
                "verdict": report.verdict,
                "sub_indication": report.sub_indication,
                "detail": report.detail,
                "seconds": round(seconds, 3),
                "peak_rss_mib": round(peak_kib / 1024, 1),
            }
        ).encode(),
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
