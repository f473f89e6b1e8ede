"""Where a study lives: a local directory, or an S3 prefix (``s3://BUCKET/PREFIX/NAME``).

A local study is one directory that every Ray node shares (one machine, or NFS). An S3 study is
for clusters whose nodes share no filesystem; its durable home holds the same files as a local
study (the layout of ``bench.study_dir``), but nobody writes there as a path:

- The driver works on a local copy of the study (``$GAN_BENCH_CACHE/studies/<name>-<hash of
  bucket/path>``): each part of the ledger (``bench.results_store``) is written there atomically as
  for a local study, then PUT as one object (S3 replaces an object atomically and lists
  consistently), so the durable ``results/`` is a whole table at any moment, like the local one, and
  recording a trial uploads one small part, not the table. ``.driver.lock`` guards the
  local copy only: two drivers on *different machines* against one S3 study are not detected.
- A trial trains in a scratch directory on its node (``<tmp>/gan-bench/<hash>/<trial_id>``) and
  mirrors it to ``<study>/trials/<trial_id>/`` at every checkpoint (the checkpoint first, then the
  small files: config.json, metrics.jsonl, scores.jsonl, record.json) and at the end. A trial that
  starts (or is restarted by Tune on another node) first pulls that mirror, so it resumes from its
  last uploaded checkpoint with its logs and scores. This replaces Tune's own checkpoint for S3
  studies: one upload per checkpoint instead of two, and the restored run has its scores too. The
  scratch keeps only the last checkpoint and is deleted when the trial ends (a trial that ASHA stops,
  or whose node dies, leaves its last checkpoint there: the OS's temporary-file cleanup takes it).

The endpoint and options come from pyarrow (``pyarrow.fs.FileSystem.from_uri``): the URI's query
(``?endpoint_override=http://HOST:PORT&scheme=http&region=...``) or the AWS SDK's environment
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, profiles). The
URI, query included, travels to the trials; the environment does not, so on a cluster every node
needs the credentials (and ``AWS_ENDPOINT_URL`` if used) in its own. Keep credentials out of the URI:
it is printed in messages and stored in Tune's trial configs.
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

from bench.callbacks import Callback, Event
from bench.errors import UsageError
from bench.io import atomic_write_bytes
from bench.run_dir import CKPT_DIR, SMALL_FILES  # SMALL_FILES: a run minus its checkpoints, rewritten whole at every push
from bench.study_dir import StudyDir, trial_rel

ACCEPTED = ("a local directory, or s3://BUCKET/PREFIX (a custom endpoint: "
            "?endpoint_override=http://HOST:PORT&scheme=http, or env AWS_ENDPOINT_URL)")
# S3 failures carry no errno. The CLI turns OSErrors with a storage errno into "storage failed:
# one line, exit 1, run the command again", which is what an unreachable or refusing S3 mid-run is.
S3_ERRNO = errno.EACCES


def is_uri(text: str | os.PathLike) -> bool:
    return "://" in str(text)


def _cache_root() -> Path:
    return Path(os.environ.get("GAN_BENCH_CACHE") or "~/.cache/gan-bench").expanduser()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@contextmanager
def _s3(target: str) -> Iterator[None]:
    """Turn an S3 failure (pyarrow's OSError without errno) into a storage error the CLI reports in
    one line with exit 1. A missing object (FileNotFoundError) passes through: callers expect it."""
    try:
        yield
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno is not None:
            raise
        raise OSError(S3_ERRNO, f"S3 failed ({_first_line(e)})", target) from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    if not text:
        return type(e).__name__
    # The AWS SDK appends curl details and request ids: the first sentence names the failure.
    return text.splitlines()[0].split("; Details:")[0].split(" (Request ID")[0][:300]


@dataclass(frozen=True)
class Remote:
    """A folder on S3: ``uri`` as given (its query holds pyarrow's S3 options), ``path`` =
    ``bucket/key prefix`` inside the filesystem ``fs``."""

    uri: str
    fs: Any  # pyarrow.fs.S3FileSystem
    path: str

    @classmethod
    def at(cls, uri: str) -> "Remote":
        """The folder ``uri`` without checking that it can be reached (trials: the driver did)."""
        import pyarrow.fs as pafs

        with _s3(uri):
            fs, path = pafs.FileSystem.from_uri(uri)
        return cls(uri, fs, path.rstrip("/"))

    @property
    def name(self) -> str:
        """``s3://bucket/prefix`` (the URI without its query), for messages."""
        return f"s3://{self.path}"

    @property
    def bucket(self) -> str:
        return self.path.split("/", 1)[0]

    def child(self, rel: str) -> "Remote":
        u = urlsplit(self.uri)
        return Remote(urlunsplit((u.scheme, u.netloc, f"{u.path.rstrip('/')}/{rel}", u.query, u.fragment)),
                      self.fs, f"{self.path}/{rel}")

    def _key(self, rel: str) -> str:
        return f"{self.path}/{rel}" if rel else self.path

    def read(self, rel: str) -> bytes | None:
        """The object's bytes (one GET: a consistent copy), or None if there is none."""
        with _s3(f"{self.name}/{rel}"):
            try:
                with self.fs.open_input_stream(self._key(rel)) as f:
                    return f.read()
            except FileNotFoundError:
                return None

    def write(self, rel: str, data: bytes) -> None:
        """Replace the object whole (readers see the old object or the new one, never a mix)."""
        with _s3(f"{self.name}/{rel}"), self.fs.open_output_stream(self._key(rel)) as f:
            f.write(data)

    def upload(self, local: Path, rel: str) -> None:
        with _s3(f"{self.name}/{rel}"), open(local, "rb") as src, self.fs.open_output_stream(self._key(rel)) as dst:
            shutil.copyfileobj(src, dst, 8 << 20)

    def download(self, rel: str, local: Path) -> bool:
        """Copy one object to ``local`` atomically; False if there is no such object."""
        data = self.read(rel)
        if data is None:
            return False
        atomic_write_bytes(local, data)
        return True

    def files(self, rel: str = "") -> list[str]:
        """Every object under ``rel``, as paths relative to it, sorted."""
        import pyarrow.fs as pafs

        base = self._key(rel)
        with _s3(f"{self.name}/{rel}"):
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(i.path[len(base) + 1:] for i in infos if i.type == pafs.FileType.File)


    def delete(self, rel: str) -> None:
        """Remove one object (none there: nothing to do)."""
        with _s3(f"{self.name}/{rel}"):
            try:
                self.fs.delete_file(self._key(rel))
            except FileNotFoundError:
                pass


@dataclass(frozen=True)
class RemoteFolder:
    """A ``bench.results_store.Folder`` on S3: parts are objects (a PUT replaces one atomically, and
    S3's listings are strongly consistent, so the store's protocol holds as on a local disk)."""

    remote: Remote

    def names(self) -> list[str]:
        return [f for f in self.remote.files() if "/" not in f]

    def get(self, name: str) -> bytes | None:
        return self.remote.read(name)

    def put(self, name: str, data: bytes) -> None:
        self.remote.write(name, data)

    def delete(self, name: str) -> None:
        self.remote.delete(name)


def open_remote(uri: str, what: str) -> Remote:
    """An S3 folder named on the command line, checked before anything is written: the scheme, the
    URI's options, the endpoint and the bucket. Any problem is a UsageError (one line, exit 2)."""
    import pyarrow.fs as pafs

    scheme = urlsplit(uri).scheme.lower()
    if scheme != "s3":
        raise UsageError(f"{what} {uri}: {scheme}:// is not supported; give {ACCEPTED}")
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (ValueError, OSError) as e:  # ArrowInvalid (a ValueError): an unknown query option, ...
        raise UsageError(f"{what} {uri}: {_first_line(e)}; give {ACCEPTED}") from None
    remote = Remote(uri, fs, path.rstrip("/"))
    if not remote.bucket:
        raise UsageError(f"{what} {uri}: no bucket named; give {ACCEPTED}")
    try:
        info = fs.get_file_info(remote.bucket)
    except OSError as e:
        raise UsageError(f"{what} {uri}: cannot reach S3 ({_first_line(e)}); check the endpoint "
                         "(?endpoint_override=... or AWS_ENDPOINT_URL) and the AWS_* credentials") from None
    if info.type == pafs.FileType.NotFound:
        raise UsageError(f"{what} {uri}: bucket '{remote.bucket}' does not exist (create it first)")
    return remote


def _working_copy(remote: Remote) -> Path:
    # Keyed by bucket and path, not the URI's spelling: `bench run --storage s3://b/p?endpoint...` and
    # `bench resume s3://b/p/N` (endpoint from the environment) share one working copy and one lock.
    return _cache_root() / "studies" / f"{Path(remote.path).name}-{_digest(remote.path)}"


def new_study_dir(storage: str, name: str) -> StudyDir:
    """``--storage`` + ``--name`` of ``bench run``."""
    if not is_uri(storage):
        return StudyDir(Path(storage).absolute() / name)
    remote = open_remote(storage, "--storage").child(name)
    return StudyDir(_working_copy(remote), remote)


def study_dir_at(text: str) -> StudyDir:
    """The study argument of ``bench resume`` / ``bench status``: a directory or an S3 URI."""
    if not is_uri(text):
        return StudyDir(Path(text).absolute())
    remote = open_remote(text, "study")
    return StudyDir(_working_copy(remote), remote)


def refuse_uri(text: str, command: str) -> None:
    """For commands that read a study as local files: one line saying how to get a local copy."""
    if not is_uri(text):
        return
    u = urlsplit(str(text))
    name = Path(u.path.rstrip("/")).name or "NAME"
    how = (f" (`aws s3 sync s3://{u.netloc}{u.path.rstrip('/')} ./{name}`, with --endpoint-url for MinIO)"
           if u.scheme.lower() == "s3" else "")
    raise UsageError(f"{command} reads a study from a local directory, not {text}; copy it to one first{how}, "
                     f"then give ./{name}")


# ---- a trial's run directory, mirrored to S3 (runs on the trial's node) ------------------------


class TrialMirror(Callback):
    """A trial's run directory: trained in local scratch, mirrored to ``<study>/trials/<id>/``.

    As a training callback (``bench.callbacks``) it pushes every checkpoint as it is written, and at
    the end the final record, then frees the scratch directory."""

    def __init__(self, study_uri: str, trial_id: str):
        study = Remote.at(study_uri)
        self.remote = study.child(trial_rel(trial_id))
        self.local = Path(tempfile.gettempdir()) / "gan-bench" / _digest(study.path) / trial_id
        self._pushed: set[str] = set()

    def pull(self) -> None:
        """Make the scratch directory the trial's latest state: the copy whose last checkpoint is
        later wins (the scratch is ahead when its node died after saving, before uploading)."""
        remote = [f for f in self.remote.files(CKPT_DIR) if f.startswith("step_") and f.endswith(".pt")]
        local = sorted(p.name for p in (self.local / CKPT_DIR).glob("step_*.pt"))
        if not remote or (local and local[-1] >= remote[-1]):
            return
        shutil.rmtree(self.local, ignore_errors=True)
        for name in SMALL_FILES:
            self.remote.download(name, self.local / name)
        self.remote.download(f"{CKPT_DIR}/{remote[-1]}", self.local / CKPT_DIR / remote[-1])
        self._pushed.update(f"{CKPT_DIR}/{f}" for f in remote)

    def push(self, checkpoint: Path | None = None) -> None:
        """Upload a new checkpoint, then the small files (in that order: a mirror cut between the
        two has logs up to an earlier checkpoint, which resuming handles, never logs ahead of one).
        Uploaded checkpoints older than the new one leave the scratch: resuming needs the last one
        only, so a node holds one checkpoint per trial (an image model's is hundreds of MB)."""
        if checkpoint is not None:
            rel = f"{CKPT_DIR}/{checkpoint.name}"
            if rel not in self._pushed:
                self.remote.upload(checkpoint, rel)
                self._pushed.add(rel)
            for old in (self.local / CKPT_DIR).glob("step_*.pt"):
                if old.name < checkpoint.name and f"{CKPT_DIR}/{old.name}" in self._pushed:
                    old.unlink(missing_ok=True)
        for name in SMALL_FILES:
            if (self.local / name).is_file():
                self.remote.upload(self.local / name, name)

    def on_checkpoint(self, event: Event) -> None:
        self.push(event.checkpoint)

    def on_end(self, run: Any, result: Any) -> None:
        self.push()  # the final record.json (and the logs of a diverged run)
        self.discard()

    def discard(self) -> None:
        """Free the node's disk once everything is uploaded."""
        shutil.rmtree(self.local, ignore_errors=True)
        try:
            self.local.parent.rmdir()  # the study's scratch folder, once its last trial here is done
        except OSError:
            pass
