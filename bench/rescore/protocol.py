"""Protocol strings: what a score means, in one string.

    METRIC/EXTRACTOR[@WEIGHTS8]/COUNT-vs-SPLIT

- ``METRIC``: one output key of a metric family (``fid``, ``kid``, ``kid_std``, ``precision``,
  ``recall``, ``f_score``, ``density``, ``coverage``, ``is``, ``is_std``, ``modes``, ``hq_fraction``,
  ``mode_kl``, ``modes_total``): one number per (checkpoint, protocol).
- ``EXTRACTOR``: the network the metric read (``identity``, ``digits-cnn``, ``inception-v3-compat``,
  or a registered name); ``none`` for metrics of the raw samples (mode coverage of 2-D mixtures).
- ``@WEIGHTS8``: the first 8 hex digits of the sha256 of the extractor's weights (absent when it has
  none, as ``identity``), so another weights file is another protocol.
- ``COUNT``: generated samples, ``10k`` for 10,000 (multiples of 1,000 from 1,000 up), else the number
  (``500``, ``1797``). The real side uses min(COUNT, size of the split), recorded as ``n_real``.
- ``SPLIT``: the real split compared with (``test`` or ``train``).

Examples: ``fid/inception-v3-compat@f58cb969/10k-vs-test``, ``fid/identity/500-vs-test``,
``modes/none/2k-vs-test``. Latents are always drawn with seed 0 (``bench.metrics.DEFAULTS``) and the
metric parameters are the defaults of ``bench.metrics.defaults``: both are part of every protocol.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import UsageError

NO_EXTRACTOR = "none"
_RE = re.compile(r"^(?P<metric>[^/@\s]+)/(?P<extractor>[^/\s]+?)(?:@(?P<weights>[0-9a-f]{8}))?"
                 r"/(?P<count>[1-9][0-9]*k?)-vs-(?P<split>[^/\s]+)$")


@dataclass(frozen=True)
class Protocol:
    metric: str
    extractor: str
    weights8: str | None
    n_generated: int
    split: str

    def __str__(self) -> str:
        return format_protocol(self.metric, self.extractor, self.weights8, self.n_generated, self.split)


def count_label(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def format_protocol(metric: str, extractor: str | None, weights_sha256: str | None, n_generated: int,
                    split: str) -> str:
    """The protocol string (see the module docstring); ``weights_sha256`` may be the full digest."""
    ex = extractor or NO_EXTRACTOR
    w = f"@{weights_sha256[:8]}" if weights_sha256 else ""
    return f"{metric}/{ex}{w}/{count_label(int(n_generated))}-vs-{split}"


def parse_protocol(text: str) -> Protocol:
    """The parts of a protocol string; a UsageError (one line) when it is not one."""
    m = _RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise UsageError(f"not a protocol: {text!r} (expected METRIC/EXTRACTOR[@WEIGHTS8]/COUNT-vs-SPLIT, "
                         "e.g. fid/inception-v3-compat@f58cb969/10k-vs-test)")
    c = m["count"]
    n = int(c[:-1]) * 1000 if c.endswith("k") else int(c)
    return Protocol(m["metric"], m["extractor"], m["weights"], n, m["split"])


def is_protocol(text: str) -> bool:
    return isinstance(text, str) and "/" in text
