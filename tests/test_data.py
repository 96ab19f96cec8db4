"""Corpora: exact sizes of the real files, splits, streams, the synthetic text, bad input, downloads."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest
import torch
from conftest import REAL_CORPORA_REASON, real_corpus_dir

from rnnbench.core import data
from rnnbench.core.data import Corpus, load_corpus, streams
from rnnbench.core.synthetic import LINE_WIDTH, generate
from rnnbench.errors import UsageError

needs_real = pytest.mark.skipif(real_corpus_dir() is None, reason=REAL_CORPORA_REASON)


@needs_real
@pytest.mark.parametrize(
    "name, n_bytes, vocab, splits",
    [
        ("warpeace", 3_258_246, 87, (2_606_596, 325_824, 325_826)),
        ("linux", 6_206_996, 99, (4_965_596, 620_699, 620_701)),
    ],
)
def test_real_corpora_exact_counts(name, n_bytes, vocab, splits):
    corpus = load_corpus(name, real_corpus_dir())
    assert corpus.n_bytes == n_bytes
    assert corpus.vocab_size == vocab
    assert corpus.split_sizes == splits
    assert corpus.sha256 == data.REGISTRY[name].sha256
    assert data.REGISTRY[name].vocab_size == vocab  # what sizes the paper suite's layers without the file


def test_split_sizes_follow_the_rule():
    corpus = Corpus("x", bytes(range(256)) * 41, "test")  # n = 10496
    n = corpus.n_bytes
    assert corpus.split_sizes == (int(0.8 * n), int(0.1 * n), n - int(0.8 * n) - int(0.1 * n))
    parts = corpus.splits()
    assert [p.numel() for p in parts.values()] == list(corpus.split_sizes)
    # Contiguous and in order: joined back they are the whole encoded text.
    assert torch.equal(torch.cat(list(parts.values())), corpus.encode())


def test_chunked_layout_cuts_rows_into_chunks_as_char_rnns_loader():
    from rnnbench.core.data import Layout

    encoded = torch.arange(50)  # 50 bytes, batch 2 x seq 3: 8 chunks per row, 48 bytes kept
    layout = Layout("chunked", train_fraction=0.5, val_fraction=0.25, batch_size=2, seq_len=3)
    assert layout.chunks(50) == (4, 2, 2) and layout.sizes(50) == (24, 12, 12)
    parts = layout.streams(encoded)
    # Row b holds bytes 24 b .. 24 b + 23; its first 4 chunks train, the next 2 val, the last 2 test.
    assert parts["train"].tolist() == [list(range(0, 12)), list(range(24, 36))]
    assert parts["val"].tolist() == [list(range(12, 18)), list(range(36, 42))]
    assert parts["test"].tolist() == [list(range(18, 24)), list(range(42, 48))]
    assert all(part.data_ptr() >= encoded.data_ptr() for part in parts.values())  # views, no copies
    # floor() of each share, as char-rnn: 0.8 x 7 chunks is 5 train, 0.1 x 7 is 0 val (too small).
    assert Layout("chunked", batch_size=1, seq_len=2).chunks(15) == (5, 0, 2)
    with pytest.raises(UsageError, match="val split has 0 bytes"):
        Layout("chunked", batch_size=1, seq_len=2).check_fits("x", 15)


def test_contiguous_layout_is_the_old_split():
    from rnnbench.core.data import Layout

    corpus = Corpus("x", bytes(range(256)) * 41, "test")
    parts = Layout(batch_size=4, seq_len=8).streams(corpus.encode())
    for part, whole in zip(parts.values(), corpus.splits().values()):
        assert torch.equal(part, streams(whole, 4))
    assert Layout(train_fraction=0.9, val_fraction=0.05).sizes(1000) == (900, 50, 50)


@pytest.mark.parametrize("train, val", [(0.9, 0.1), (0.0, 0.5), (0.5, 0.0), (1.2, 0.1)])
def test_fractions_that_leave_a_split_empty_are_refused(train, val):
    from rnnbench.core.data import Layout

    with pytest.raises(UsageError, match="add up to less than 1"):
        Layout(train_fraction=train, val_fraction=val)


@needs_real
def test_war_and_peace_chunked_as_char_rnn_at_100_x_100():
    from rnnbench.core.data import Layout

    corpus = load_corpus("warpeace", real_corpus_dir())
    layout = Layout("chunked", batch_size=100, seq_len=100)
    assert layout.chunks(corpus.n_bytes) == (260, 32, 33)
    assert layout.sizes(corpus.n_bytes) == (2_600_000, 320_000, 330_000)
    parts = layout.streams(corpus.encode())
    assert {k: tuple(v.shape) for k, v in parts.items()} == {
        "train": (100, 26_000),
        "val": (100, 3_200),
        "test": (100, 3_300),
    }
    # Row 1 starts at byte 32,500: its validation part is the book's bytes 58,500 .. 61,699.
    assert torch.equal(parts["val"][1], corpus.encode()[58_500:61_700])


def test_vocabulary_is_sorted_byte_values():
    corpus = Corpus("x", "zaé a".encode(), "test")  # é is two bytes
    assert corpus.vocab == tuple(sorted(set("zaé a".encode())))
    assert corpus.encode().tolist() == [corpus.vocab.index(b) for b in "zaé a".encode()]


def test_streams_are_views_cut_in_order():
    split = torch.arange(103)
    s = streams(split, 4)
    assert s.shape == (4, 25)
    assert s[1, 0].item() == 25 and s.data_ptr() == split.data_ptr()


def test_synthetic_is_deterministic_and_structured():
    text = generate(50_000, seed=3)
    assert text == generate(50_000, seed=3) and text != generate(50_000, seed=4)
    assert len(text) == 50_000
    lines = text.decode().split("\n")[:-1]
    assert all(len(line) == LINE_WIDTH for line in lines)
    # Every block closes with the name it opened with, and brackets close in order.
    opened = [line.split()[1].rstrip(".") for line in lines if line.startswith("begin ")]
    closed = [line.split()[1].rstrip(".") for line in lines if line.startswith("end ")]
    assert closed == opened[: len(closed)]
    pairs = {")": "(", "]": "[", "}": "{", ">": "<"}
    for line in lines:
        stack = []
        for ch in line.split(" = ", 1)[-1]:
            if ch in "([{<":
                stack.append(ch)
            elif ch in pairs:
                assert stack.pop() == pairs[ch]
        assert not stack


def test_synthetic_corpus_by_name():
    corpus = load_corpus("synthetic")
    assert corpus.n_bytes == data.SYNTHETIC_BYTES and corpus.name == "synthetic"


def _empty_file(folder: Path) -> Path:
    path = folder / "empty.txt"
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "absent.txt", "no corpus"),
        (_empty_file, "is empty"),
        (lambda p: p, "is a directory"),
    ],
)
def test_bad_files_are_usage_errors(tmp_path, make, message):
    with pytest.raises(UsageError, match=message):
        load_corpus(str(make(tmp_path)))


def test_too_small_for_one_batch_names_the_split():
    corpus = Corpus("small", generate(5_000), "test")
    with pytest.raises(UsageError, match="val split has 500 bytes"):
        corpus.check_fits(batch_size=10, seq_len=100)
    corpus.check_fits(batch_size=4, seq_len=100)


def test_wrong_file_under_a_registered_name_is_refused(tmp_path):
    (tmp_path / "warpeace.txt").write_bytes(b"not tolstoy")
    with pytest.raises(UsageError, match="is not the 'warpeace' corpus"):
        load_corpus("warpeace", tmp_path)


def test_lookup_order_data_dir_then_env_then_cache(tmp_path, monkeypatch, isolated_cache):
    spec = data.REGISTRY["linux"]
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second, isolated_cache):
        folder.mkdir(parents=True)
        (folder / spec.filename).write_bytes(b"x")
    monkeypatch.setenv("RNNBENCH_DATA_DIR", str(second))
    assert data.find(spec, first) == first / spec.filename
    assert data.find(spec) == second / spec.filename
    monkeypatch.delenv("RNNBENCH_DATA_DIR")
    assert data.find(spec) == isolated_cache / spec.filename


def test_linux_without_file_says_how_to_build_it(monkeypatch):
    monkeypatch.delenv("RNNBENCH_DATA_DIR", raising=False)
    with pytest.raises(UsageError, match="build-linux"):
        load_corpus("linux")


# --- downloads against a real HTTP server on 127.0.0.1 -------------------------------------------

BODY = generate(20_000, seed=9)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/good.txt":
            self._send(200, BODY, len(BODY))
        elif self.path == "/tampered.txt":
            self._send(200, BODY[:-1] + b"!", len(BODY))
        elif self.path == "/truncated.txt":
            self._send(200, BODY[: len(BODY) // 2], len(BODY))  # promises more than it sends
        else:
            self._send(500, b"boom", 4)

    def _send(self, code, body, length):
        self.send_response(code)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def served_spec(monkeypatch):
    def make(url):
        spec = data.CorpusSpec("served", "served.txt", len(BODY), hashlib.sha256(BODY).hexdigest(), "test", url=url)
        monkeypatch.setitem(data.REGISTRY, "served", spec)
        return spec

    return make


def test_download_good_file_lands_in_cache(server, served_spec, isolated_cache):
    from rnnbench.events import DownloadEnded, DownloadProgress, DownloadStarted

    served_spec(f"{server}/good.txt")
    events = []
    corpus = load_corpus("served", on_event=events.append)
    assert corpus.data == BODY
    # Reported for a display to draw: the size, the bytes so far, and the end.
    assert events[0] == DownloadStarted(f"{server}/good.txt", len(BODY)) and events[-1] == DownloadEnded(
        f"{server}/good.txt"
    )
    assert [e.bytes_done for e in events if isinstance(e, DownloadProgress)][-1] == len(BODY)
    assert (isolated_cache / "served.txt").read_bytes() == BODY
    assert [p.name for p in isolated_cache.iterdir()] == ["served.txt"]


@pytest.mark.parametrize(
    "path, message",
    [
        ("/tampered.txt", "wrong sha256"),
        ("/truncated.txt", "failed|cut short"),
        ("/missing.txt", "HTTP 500"),
    ],
)
def test_bad_downloads_leave_nothing_in_cache(server, served_spec, isolated_cache, path, message):
    served_spec(f"{server}{path}")
    events = []
    with pytest.raises(UsageError, match=message):
        load_corpus("served", on_event=events.append)
    assert not isolated_cache.exists() or not any(isolated_cache.iterdir())
    assert not events or type(events[-1]).__name__ == "DownloadEnded"  # a display is always told it ended


def test_unreachable_server_is_a_usage_error_that_says_where_it_looked_and_what_to_do(served_spec, tmp_path):
    served_spec("http://127.0.0.1:9/none.txt")  # the discard port: nothing listens
    with pytest.raises(UsageError, match="download of") as raised:
        load_corpus("served", data_dir=tmp_path)
    text = str(raised.value)
    assert str(tmp_path) in text and "--data-dir FOLDER" in text and "RNNBENCH_DATA_DIR=FOLDER" in text
    assert "rnnbench data fetch served" in text and "\n" not in text


# --- the Linux recipe --------------------------------------------------------------------------


def _tarball(tmp_path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    path = tmp_path / "linux-source.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for name, body in files.items():
            info = tarfile.TarInfo(f"linux-source-6.1/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(f"linux-source-6.1/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path


def test_build_linux_follows_the_recipe(tmp_path):
    tarball = _tarball(
        tmp_path,
        {
            "kernel/sched/core.c": b"CORE",
            "kernel/acct.c": b"ACCT",
            "kernel/Makefile": b"skip: not .c/.h",
            "kernel/a_b.h": b"AB",
            "mm/slab.c": b"skip: not under kernel/",
            "kernel/bpf/x.c": b"BPF",
        },
        links={"kernel/link.c": "acct.c"},
    )
    # Byte order puts '_' (0x5f) after upper case and before lower case: a_b.h < acct.c.
    assert data.build_linux_text(tarball, n_bytes=1000) == b"AB\nACCT\nBPF\nCORE"
    assert data.build_linux_text(tarball, n_bytes=6) == b"AB\nACC"


def test_build_linux_of_a_non_tarball_is_a_usage_error(tmp_path):
    bad = tmp_path / "x.tar.xz"
    bad.write_bytes(b"not a tarball")
    with pytest.raises(UsageError, match="cannot open"):
        data.build_linux_text(bad)
