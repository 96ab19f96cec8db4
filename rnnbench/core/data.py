"""Corpora: a registry of named texts, fetch + verify + cache, bytes -> tensors, splits, streams.

    >>> from rnnbench.core.data import load_corpus
    >>> corpus = load_corpus("synthetic")
    >>> corpus.n_bytes, corpus.vocab_size, corpus.split_sizes
    (500000, 39, (400000, 50000, 50000))

A corpus is read as bytes, as char-rnn read it: the vocabulary is the sorted set of byte values
in the whole file and the paper's character counts are byte counts. A Layout cuts it into train,
validation and test, each as `batch_size` parallel streams:

    >>> from rnnbench.core.data import Layout
    >>> Layout("chunked", batch_size=100, seq_len=100).sizes(3_258_246)   # War and Peace as char-rnn cut it
    (2600000, 320000, 330000)

'contiguous': train = int(0.8 n) bytes, val = int(0.1 n), test = the rest, each cut into streams.
'chunked' (char-rnn's CharSplitLMMinibatchLoader): the text's end is cut so that its length
divides by batch x seq, the bytes are viewed as `batch_size` rows, every row is cut into chunks of
`seq_len`, and the first floor(0.8 chunks) of every row are train, the next floor(0.1 chunks)
validation, the rest test; stream b of each split is row b's chunks of it, in order. Validation and
test are then slices spread through the whole text, not its end.

Named corpora are looked up in `data_dir`, then $RNNBENCH_DATA_DIR, then the cache directory
($RNNBENCH_CACHE_DIR, or the user cache directory); a corpus with a download address that is in
none of them is downloaded into the cache, checked against its sha256 and renamed into place only
when whole, so the cache never holds a partial file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import io
import math
import os
import stat
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath

import numpy as np
import platformdirs
import torch

from rnnbench.choices import LAYOUTS, TRAIN_FRACTION, VAL_FRACTION, check_choice
from rnnbench.config import check_fractions
from rnnbench.core.synthetic import generate
from rnnbench.errors import UsageError
from rnnbench.events import DownloadEnded, DownloadProgress, DownloadStarted, OnEvent, ignore
from rnnbench.files import write_atomic

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Layout:
    """How a text is cut into train, validation and test, and each of them into `batch_size`
    streams of equal length (see the module's docstring). The chunked layout depends on the
    batch and the sequence length, as char-rnn's did; the contiguous one on neither."""

    split: str = "contiguous"
    train_fraction: float = TRAIN_FRACTION
    val_fraction: float = VAL_FRACTION
    batch_size: int = 100
    seq_len: int = 100

    def __post_init__(self):
        check_choice("split", self.split, LAYOUTS)
        check_fractions(self.train_fraction, self.val_fraction)

    @classmethod
    def of(cls, train) -> Layout:
        """The layout a TrainConfig (or anything with the same fields) asks for."""
        return cls(train.split, train.train_fraction, train.val_fraction, train.batch_size, train.seq_len)

    def chunks(self, n_bytes: int) -> tuple[int, int, int]:
        """Chunked layout: the (train, val, test) chunks of every row, as char-rnn counted them."""
        per_row = n_bytes // (self.batch_size * self.seq_len)
        n_train = math.floor(per_row * self.train_fraction)
        n_val = math.floor(per_row * self.val_fraction)
        return n_train, n_val, per_row - n_train - n_val

    def sizes(self, n_bytes: int) -> tuple[int, int, int]:
        """Bytes in the (train, val, test) splits of a text of `n_bytes`; chunked, the bytes cut
        off its end are in none."""
        if self.split == "chunked":
            return tuple(self.batch_size * self.seq_len * c for c in self.chunks(n_bytes))
        n_train, n_val = int(self.train_fraction * n_bytes), int(self.val_fraction * n_bytes)
        return n_train, n_val, n_bytes - n_train - n_val

    def steps_per_epoch(self, n_bytes: int) -> int:
        """Training steps in one pass over the train split of a text of `n_bytes`: each step takes
        seq_len characters of every stream, whose last character has nothing to predict."""
        return (self.sizes(n_bytes)[0] // self.batch_size - 1) // self.seq_len

    def streams(self, encoded: torch.Tensor) -> dict[str, torch.Tensor]:
        """{"train", "val", "test"}: each a view of `encoded` of shape (batch_size, length)."""
        if self.split == "chunked":
            n_train, n_val, n_test = (c * self.seq_len for c in self.chunks(encoded.numel()))
            rows = encoded[: self.batch_size * (n_train + n_val + n_test)].view(self.batch_size, -1)
            return dict(zip(SPLIT_NAMES, rows.split([n_train, n_val, n_test], dim=1)))
        parts = encoded.split(list(self.sizes(encoded.numel())))
        return {name: streams(part, self.batch_size) for name, part in zip(SPLIT_NAMES, parts)}

    def check_fits(self, corpus_name: str, n_bytes: int) -> None:
        """Every split must give each stream at least one step of `seq_len` (and its target)."""
        for split, size in zip(SPLIT_NAMES, self.sizes(n_bytes)):
            if size // self.batch_size < self.seq_len + 1:
                need = self.batch_size * (self.seq_len + 1)
                if self.split == "chunked":
                    need = math.ceil(
                        self.batch_size
                        * self.seq_len
                        * 2
                        / min(self.train_fraction, self.val_fraction, 1 - self.train_fraction - self.val_fraction)
                    )
                raise UsageError(
                    f"corpus '{corpus_name}' is too small: its {split} split has {size:,} bytes but "
                    f"batch size {self.batch_size} x sequence length {self.seq_len} needs at least {need:,} "
                    f"there{' (two chunks of every row)' if self.split == 'chunked' else ''}; "
                    "use a smaller --batch-size/--seq-len or a larger text"
                )


@dataclass(frozen=True)
class CorpusSpec:
    """A named corpus: its file, exact size and checksum, and how to obtain it."""

    name: str
    filename: str
    n_bytes: int
    sha256: str
    description: str
    url: str | None = None  # None: cannot be downloaded, `how_to_get` says what to do
    how_to_get: str = ""
    vocab_size: int | None = None  # distinct bytes of the verified text (what sizes its models without it)


WARPEACE_URL = (
    "https://raw.githubusercontent.com/ZihanDai2005/PSTAT_160B_Final_Project/"
    "3887971b127315af5989b79b501c0bc099ffd1f9/data/warpeace_input.txt"
)

REGISTRY: dict[str, CorpusSpec] = {
    "warpeace": CorpusSpec(
        name="warpeace",
        filename="warpeace.txt",
        n_bytes=3_258_246,
        sha256="fb66ba999dafe24017cdd59e04c56d385a9c8466993d374fd4c6f08b2142985e",
        description="Tolstoy, War and Peace (char-rnn's warpeace_input.txt)",
        url=WARPEACE_URL,
        vocab_size=87,
    ),
    "linux": CorpusSpec(
        name="linux",
        filename="linux.txt",
        n_bytes=6_206_996,
        sha256="d82ed27012c0ead14196763ee97878324bc1ae10ae3b07a2656dba64b0549432",
        description="Linux 6.1.192 kernel/ C source, joined (the paper's length)",
        how_to_get=(
            "build it from Debian's linux-source-6.1 (6.1.192-2) with "
            "`rnnbench data build-linux linux-source-6.1.tar.xz`"
        ),
        vocab_size=99,
    ),
}

SYNTHETIC_NAME = "synthetic"
SYNTHETIC_BYTES = 500_000
SYNTHETIC_SEED = 0


def cache_dir() -> Path:
    """Where downloaded and built corpora are kept."""
    override = os.environ.get("RNNBENCH_CACHE_DIR")
    base = Path(override) if override else Path(platformdirs.user_cache_dir("rnnbench"))
    return base / "datasets"


def search_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """The folders a named corpus is looked up in, in order."""
    dirs = [Path(data_dir)] if data_dir else []
    if os.environ.get("RNNBENCH_DATA_DIR"):
        dirs.append(Path(os.environ["RNNBENCH_DATA_DIR"]))
    dirs.append(cache_dir())
    return dirs


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Corpus:
    """A text held in memory as bytes; everything else is derived from them."""

    name: str
    data: bytes = field(repr=False)
    source: str  # a path, or how the bytes were made

    @cached_property
    def sha256(self) -> str:
        return sha256_of(self.data)

    @property
    def n_bytes(self) -> int:
        return len(self.data)

    @cached_property
    def _byte_values(self) -> np.ndarray:
        """The bytes as a read-only array over `data`: no copy (a 1 GB corpus stays 1 GB)."""
        return np.frombuffer(self.data, dtype=np.uint8)

    @cached_property
    def vocab(self) -> tuple[int, ...]:
        """The sorted byte values that occur in the whole text (counted, not sorted: O(n), no copy)."""
        counts = np.zeros(256, dtype=np.int64)
        for part in _chunks(self._byte_values):
            counts += np.bincount(part, minlength=256)
        return tuple(int(b) for b in np.flatnonzero(counts))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def split_sizes(self) -> tuple[int, int, int]:
        """The contiguous 80/10/10 split's sizes (Layout.sizes gives any layout's)."""
        return Layout().sizes(self.n_bytes)

    def encode(self) -> torch.Tensor:
        """The text as vocabulary indices, uint8 (a vocabulary has at most 256 symbols): one byte
        per character, on the host and on the device. Batches are widened to int64 where a model
        or a loss takes them (models.CharRNN, train.train_step). Made once per corpus, not once
        per run (12 s for 1 GB); callers only read it."""
        return self._encoded

    @cached_property
    def _encoded(self) -> torch.Tensor:
        lookup = np.zeros(256, dtype=np.uint8)
        lookup[list(self.vocab)] = np.arange(self.vocab_size, dtype=np.uint8)
        out = np.empty(self.n_bytes, dtype=np.uint8)
        start = 0
        for part in _chunks(self._byte_values):
            out[start : start + len(part)] = lookup[part]
            start += len(part)
        return torch.from_numpy(out)

    def splits(self) -> dict[str, torch.Tensor]:
        """Contiguous train/val/test views of the encoded text."""
        return dict(zip(SPLIT_NAMES, self.encode().split(list(self.split_sizes))))

    def check_fits(self, batch_size: int, seq_len: int, layout: Layout | None = None) -> None:
        """Every split must give each of `batch_size` streams at least one step of `seq_len`."""
        layout = dataclasses.replace(layout or Layout(), batch_size=batch_size, seq_len=seq_len)
        layout.check_fits(self.name, self.n_bytes)


def _chunks(values: np.ndarray, size: int = 1 << 24):
    """Slices of 16 MB: numpy widens an index or bincount input to int64, and on a whole 1 GB
    corpus that would be an 8 GB temporary."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def streams(split: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a split into `batch_size` contiguous parallel streams, shape (batch_size, length).

    Stream b continues where it left off at every step, so the hidden state carried from one step
    to the next belongs to the text that follows (truncated backpropagation through time).
    """
    length = split.numel() // batch_size
    return split[: batch_size * length].view(batch_size, length)


# --- finding, downloading and verifying named corpora ------------------------------------------


def _verify(spec: CorpusSpec, data: bytes, where: str) -> None:
    if len(data) != spec.n_bytes or sha256_of(data) != spec.sha256:
        raise UsageError(
            f"{where} is not the '{spec.name}' corpus: expected {spec.n_bytes:,} bytes with sha256 "
            f"{spec.sha256[:12]}…, found {len(data):,} bytes with sha256 {sha256_of(data)[:12]}…; "
            "delete or replace it"
        )


def _read_file(path: Path) -> bytes:
    """A corpus file's bytes. Anything but a regular file (a folder, a FIFO that would block for
    ever, a device that never ends) is refused before reading."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        raise UsageError(f"{path} is a directory, not a text file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        raise UsageError(f"{path} is {kind}, not a regular file: give a corpus as a file on disk")
    try:
        return path.read_bytes()
    except MemoryError:
        raise UsageError(f"{path} ({path.stat().st_size:,} bytes) does not fit in memory") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def find(spec: CorpusSpec, data_dir: str | Path | None = None) -> Path | None:
    """The first file of this corpus in the search folders, or None."""
    for folder in search_dirs(data_dir):
        path = folder / spec.filename
        if path.exists():
            return path
    return None


def download(
    url: str, expected_bytes: int, expected_sha256: str, timeout_s: float = 60.0, on_event: OnEvent = ignore
) -> bytes:
    """Fetch `url` whole and verified, or raise UsageError; nothing is written here."""
    chunks = []
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            on_event(DownloadStarted(url, int(response.headers.get("Content-Length") or expected_bytes)))
            try:
                done = 0
                while chunk := response.read(1 << 16):
                    chunks.append(chunk)
                    done += len(chunk)
                    on_event(DownloadProgress(url, done))
            finally:
                on_event(DownloadEnded(url))
    except urllib.error.HTTPError as exc:
        raise UsageError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UsageError(f"download of {url} failed: {reason}") from exc
    data = b"".join(chunks)
    if len(data) != expected_bytes:
        raise UsageError(
            f"download of {url} was cut short or too long: got {len(data):,} of {expected_bytes:,} bytes; try again"
        )
    if sha256_of(data) != expected_sha256:
        raise UsageError(
            f"download of {url} has the wrong sha256 ({sha256_of(data)[:12]}…, expected {expected_sha256[:12]}…); "
            "not saved"
        )
    return data


def not_found(spec: CorpusSpec, data_dir: str | Path | None) -> str:
    """Where a corpus was looked for, and the ways to provide it."""
    return (
        f"corpus '{spec.name}' ({spec.filename}) is not in {', '.join(map(str, search_dirs(data_dir)))}: put "
        f"{spec.filename} in a folder and give it with --data-dir FOLDER or RNNBENCH_DATA_DIR=FOLDER"
        + (f", or download it now with `rnnbench data fetch {spec.name}` where there is a network" if spec.url else "")
    )


def fetch(spec: CorpusSpec, data_dir: str | Path | None = None, on_event: OnEvent = ignore) -> Path:
    """The verified file of a named corpus, downloading it into the cache if it is nowhere yet."""
    path = find(spec, data_dir)
    if path is not None:
        return path
    if spec.url is None:
        raise UsageError(f"{not_found(spec, data_dir)}; or {spec.how_to_get}")
    try:
        data = download(spec.url, spec.n_bytes, spec.sha256, on_event=on_event)
    except UsageError as exc:
        raise UsageError(f"{exc}; {not_found(spec, data_dir)}") from exc
    path = cache_dir() / spec.filename
    write_atomic(path, data)
    return path


def load_corpus(name_or_path: str, data_dir: str | Path | None = None, on_event: OnEvent = ignore) -> Corpus:
    """A registered corpus by name (fetched if needed, reporting the download to `on_event`),
    `synthetic`, or any text file by path."""
    if name_or_path == SYNTHETIC_NAME:
        return Corpus(SYNTHETIC_NAME, generate(SYNTHETIC_BYTES, SYNTHETIC_SEED), f"generated (seed {SYNTHETIC_SEED})")
    if name_or_path in REGISTRY:
        spec = REGISTRY[name_or_path]
        path = fetch(spec, data_dir, on_event)
        data = _read_file(path)
        _verify(spec, data, str(path))
        return Corpus(spec.name, data, str(path))
    path = Path(name_or_path).expanduser()
    if not path.exists():
        known = ", ".join([*REGISTRY, SYNTHETIC_NAME])
        raise UsageError(f"no corpus '{name_or_path}': not a registered name ({known}) and no such file")
    data = _read_file(path)
    if not data:
        raise UsageError(f"{path} is empty")
    return Corpus(path.stem, data, str(path.resolve()))


@dataclass(frozen=True)
class CorpusInfo:
    """One line of `rnnbench data list`: a corpus, whether it is here, and its sizes."""

    name: str
    description: str
    n_bytes: int  # the registered size, or the size found
    where: str | None = None  # its file (or how it is made); None when it is not here
    vocab_size: int | None = None
    split_sizes: tuple[int, int, int] | None = None
    how_to_get: str | None = None  # when it is not here
    problem: str | None = None  # a file that is there but is not the corpus


def list_corpora(data_dir: str | Path | None = None, layout: Layout | None = None) -> list[CorpusInfo]:
    """Every registered corpus and `synthetic`, as found from `data_dir`, with its split sizes under
    `layout` (contiguous 80/10/10 by default); nothing is downloaded."""
    layout = layout or Layout()
    entries = [(spec.name, spec) for spec in REGISTRY.values()] + [(SYNTHETIC_NAME, None)]
    out = []
    for name, spec in entries:
        description = spec.description if spec else "generated; long-range structure (see rnnbench.core.synthetic)"
        if spec is not None and find(spec, data_dir) is None:
            out.append(
                CorpusInfo(
                    name,
                    description,
                    spec.n_bytes,
                    how_to_get="downloads on first use" if spec.url else spec.how_to_get,
                )
            )
            continue
        try:
            corpus = load_corpus(name, data_dir)
        except UsageError as exc:
            out.append(CorpusInfo(name, description, spec.n_bytes, problem=str(exc)))
            continue
        out.append(
            CorpusInfo(
                name, description, corpus.n_bytes, corpus.source, corpus.vocab_size, layout.sizes(corpus.n_bytes)
            )
        )
    return out


# --- rebuilding the Linux corpus from kernel source ----------------------------------------------


def build_linux_text(tarball: str | Path, n_bytes: int = REGISTRY["linux"].n_bytes) -> bytes:
    """The documented recipe: kernel/**/*.[ch] sorted by path, joined by one newline, first n bytes.

    `tarball` is Debian's usr/src/linux-source-6.1.tar.xz (any tar compression): its files sit
    under one top-level folder, and paths are taken relative to it. Symlinks are skipped.
    """
    try:
        archive = tarfile.open(tarball)
    except (OSError, tarfile.TarError) as exc:
        raise UsageError(f"cannot open {tarball} as a tar archive: {exc}") from exc
    files: dict[str, bytes] = {}
    with archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            relative = PurePosixPath(*parts[1:]) if len(parts) > 1 else None
            if (
                member.isfile()
                and relative is not None
                and relative.parts[0] == "kernel"
                and relative.suffix in (".c", ".h")
            ):
                files[str(relative)] = archive.extractfile(member).read()
    if not files:
        raise UsageError(f"{tarball} holds no kernel/*.c or *.h files under a top-level folder")
    # Byte-wise order of the UTF-8 paths, as `LC_ALL=C sort` gives.
    ordered = sorted(files, key=lambda p: p.encode())
    joined = io.BytesIO()
    for i, relative in enumerate(ordered):
        if joined.tell() >= n_bytes:
            break
        joined.write((b"\n" if i else b"") + files[relative])
    return joined.getvalue()[:n_bytes]
