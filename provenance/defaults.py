"""Defaults that settings declare, in a module that imports nothing.

``service.config`` declares every setting with its default when it is imported, and the
``shingan`` command imports it before it knows whether any media will be read; keeping these
values apart from the modules that use them (:mod:`provenance.media`, :mod:`provenance.trust`)
keeps numpy, Pillow and cryptography out of ``shingan --help`` and ``shingan config``.
"""

from __future__ import annotations

#: Pillow refuses images over twice its ``MAX_IMAGE_PIXELS`` (178,956,970) as bombs; Shingan's
#: default stays below that, at a size where one image's decode stays well under 1 GiB
#: (benchmarks/bench_memory.py): Pillow holds 4 bytes a pixel, so 120 MP cost 480 MB.
DEFAULT_MAX_PIXELS = 120_000_000
#: Video frames are decoded whole by FFmpeg with several reference frames beside them: 8K
#: (8192x4320) is the largest frame accepted by default.
DEFAULT_MAX_FRAME_PIXELS = 8192 * 4320

#: EKUs the C2PA specification accepts for claim signers, plus the C2PA claim-signing OID.
C2PA_SIGNER_EKUS: tuple[str, ...] = (
    "1.3.6.1.5.5.7.3.4",  # id-kp-emailProtection
    "1.3.6.1.5.5.7.3.36",  # id-kp-documentSigning
    "1.3.6.1.5.5.7.3.8",  # id-kp-timeStamping
    "1.3.6.1.5.5.7.3.9",  # id-kp-OCSPSigning
    "1.3.6.1.4.1.62558.2.1",  # c2pa-kp-claimSigning
)
