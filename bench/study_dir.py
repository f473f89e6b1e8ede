"""A study directory: the one module that knows its layout (imports no torch, no pandas).

    study.json          the study (``bench.study.Study``), written once by ``bench run``
    results/            the ledger: one row per finished trial, as Parquet parts (``bench.results``,
                        ``bench.results_store``), the driver's alone; read it with ``bench.results.read``
    results.parquet     the ledger of a study made before the parts store (read as it is; the
                        driver turns it into results/part-000000000-000000000.parquet)
    trials/<trial_id>/  each trial's run directory (``bench.run_dir.RunDir``)
    scores.parquet      scores added later without retraining (``bench.rescore.store``)
    .driver.lock        held by the one driver running the study (``bench run`` / ``bench resume``)
    .rescore.lock       held by the one ``bench rescore`` writing scores.parquet
    report/, tensorboard/  the default outputs of ``bench report`` and ``bench tensorboard`` (read by nothing else)

A study lives in a local directory, or on S3: then ``local`` is the driver's working copy and
``remote`` the durable study (``bench.storage.Remote``), which the driver writes through and the
trials mirror their run directories to (``bench.storage.TrialMirror``). Paths a results row
holds (``checkpoint``, ``checkpoint_best``) are relative to the study, so a study copied elsewhere
(or synced down from S3) still finds its checkpoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.run_dir import RunDir

if TYPE_CHECKING:
    from bench.storage import Remote

STUDY = "study.json"
RESULTS = "results"
LEGACY_RESULTS = "results.parquet"
TRIALS = "trials"
SCORES = "scores.parquet"
DRIVER_LOCK = ".driver.lock"
RESCORE_LOCK = ".rescore.lock"


def trial_rel(trial_id: str, rel: str = "") -> str:
    """A path inside trial ``trial_id``'s run directory, relative to the study (as results rows hold it)."""
    return f"{TRIALS}/{trial_id}/{rel}" if rel else f"{TRIALS}/{trial_id}"


@dataclass(frozen=True)
class StudyDir:
    """A study's directory as the driver sees it: ``local`` is the study itself (local studies) or
    the driver's working copy of ``remote`` (S3 studies)."""

    local: Path
    remote: Remote | None = None

    @classmethod
    def of(cls, where: str | Path | StudyDir) -> StudyDir:
        """A StudyDir as given, or the local study at a path."""
        return where if isinstance(where, StudyDir) else cls(Path(where).absolute())

    def __str__(self) -> str:
        return self.remote.name if self.remote else str(self.local)

    def __truediv__(self, rel: str) -> Path:
        return self.local / rel

    @property
    def trials_root(self) -> str:
        """What trials are given to find the study: an absolute local path, or the S3 URI."""
        return self.remote.uri if self.remote else str(self.local)

    def trial(self, trial_id: str) -> RunDir:
        """Trial ``trial_id``'s run directory in the local study."""
        return RunDir(self.local / trial_rel(trial_id))

    def read(self, rel: str) -> bytes | None:
        """A file of the study, read from its durable home (None: it has none)."""
        if self.remote:
            return self.remote.read(rel)
        path = self.local / rel
        return path.read_bytes() if path.is_file() else None
