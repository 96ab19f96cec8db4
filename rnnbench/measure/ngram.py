"""Character n-gram baselines: Kneser-Ney models of every order up to N, counted and scored in one
pass over the same streams as the RNNs.

    >>> from rnnbench.core.data import Layout, load_corpus
    >>> from rnnbench.measure.ngram import ngram_losses
    >>> corpus = load_corpus("synthetic")
    >>> parts = Layout("chunked", batch_size=100, seq_len=100).streams(corpus.encode())
    >>> losses = ngram_losses(parts["train"].numpy(), {"val": parts["val"].numpy()}, 5, corpus.vocab_size)
    >>> [round(x, 3) for x in losses["mkn"]["val"]]                  # orders 1 to 5, nats per character
    [2.061, 1.142, 0.975, 0.929, 0.881]

Two smoothings (Chen & Goodman 1998), both interpolated: "kn", one absolute discount per order,
D = n1 / (n1 + 2 n2) from that order's counts of counts; "mkn" (modified Kneser-Ney), three
discounts per order, D1 = 1 - 2Y n2/n1, D2 = 2 - 3Y n3/n2, D3+ = 3 - 4Y n4/n3 with Y = n1/(n1 + 2 n2),
for n-grams seen once, twice, and three times or more (an order whose estimates fall outside
(0, i] takes the one discount Y). The highest order uses raw counts; lower
orders use continuation counts (how many distinct bytes precede the n-gram); the unigram level is
interpolated with the uniform distribution over the vocabulary, so no byte has probability zero.
A context never seen in training passes the whole probability to the next lower order.

The same streams as the RNNs: n-grams are counted within each row of the train streams (under the
chunked layout a row's train part is one piece of text, and the next row's is elsewhere in the
book), and each row of a validation or test stream is scored as an RNN evaluates it: every byte but
the row's first, from at most N - 1 bytes before it in the same row (fewer near the row's start,
as the RNN starts each row from a zero state).

One pass serves every order: level k's counts give the order-k model (its top level with raw
counts over the continuation-count chain of levels 1..k-1) and then extend that chain to level k.
Counting is vectorised with numpy: every n-gram is a 64-bit polynomial hash of its bytes (base 257,
exact up to 7 bytes, wrapping modulo 2^64 above; a collision among the few million n-grams of a
corpus has probability about 1e-7), and counts are np.unique over hashes; memory stays a few
arrays of the corpus's length whatever the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rnnbench.config import Range

if TYPE_CHECKING:
    from rnnbench.results import Record

BASE = np.uint64(257)
SMOOTHINGS = {
    "kn": "interpolated Kneser-Ney, one discount per order",
    "mkn": "modified Kneser-Ney, three discounts per order (Chen & Goodman 1998)",
}


def _extend(hashes: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Hashes of the k-grams starting at 0 .. len(ids) - k, from those of the (k-1)-grams."""
    with np.errstate(over="ignore"):
        return hashes[: len(ids) - k + 1] * BASE + ids[k - 1 :].astype(np.uint64)


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == query] for each query, 0 where the query is not a key (keys sorted)."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=values.dtype)
    at = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[at] == queries, values[at], 0)


def discounts(counts: np.ndarray, smoothing: str) -> np.ndarray:
    """(D1, D2, D3+) from the counts of counts of `counts` (those above 0)."""
    n1, n2, n3, n4 = (int((counts == i).sum()) for i in (1, 2, 3, 4))
    y = n1 / (n1 + 2 * n2) if n1 else 0.5
    if smoothing == "kn":
        return np.array([y, y, y])
    # Chen & Goodman's estimates. Where one is out of (0, i] (a small or very regular text: D1 can
    # come out negative), that order takes the one-discount value instead, as a D of 0 for every
    # n-gram of a context would leave its unseen bytes with probability 0.
    d = np.array(
        [1 - 2 * y * n2 / n1 if n1 else 0.0, 2 - 3 * y * n3 / n2 if n2 else 0.0, 3 - 4 * y * n4 / n3 if n3 else 0.0]
    )
    if np.all(d > 0) and np.all(d <= [1, 2, 3]):
        return d
    return np.array([y, y, y])


@dataclass
class Level:
    """The counts of one order's n-grams in training, by one kind of count (raw or continuation),
    and what the interpolation needs of their contexts."""

    grams: np.ndarray  # sorted distinct n-gram hashes
    counts: np.ndarray  # the count of each (0 for a continuation count of an n-gram never preceded)
    d: np.ndarray  # (D1, D2, D3+)
    context_keys: np.ndarray | None = None  # sorted distinct context hashes (None for unigrams)
    context_totals: np.ndarray | float = 0.0  # the counts after each context summed
    context_mass: np.ndarray | float = 0.0  # D1 N1 + D2 N2 + D3+ N3+ of each context

    @classmethod
    def count(cls, grams: np.ndarray, counts: np.ndarray, contexts: np.ndarray | None, smoothing: str) -> Level:
        d = discounts(counts[counts > 0], smoothing)
        kept = np.where(counts > 0, d[np.clip(counts, 1, 3) - 1], 0.0)  # the discount each n-gram pays
        if contexts is None:
            return cls(grams, counts, d, None, float(counts.sum()), float(kept.sum()))
        keys, inverse = np.unique(contexts, return_inverse=True)
        return cls(grams, counts, d, keys, np.bincount(inverse, weights=counts), np.bincount(inverse, weights=kept))

    def prob(self, gram: np.ndarray, context: np.ndarray | None, lower: np.ndarray | float) -> np.ndarray:
        """P(byte | context) for each scored n-gram, interpolated with the `lower` order's."""
        c = _lookup(self.grams, self.counts, gram).astype(np.float64)
        discount = np.where(c > 0, self.d[np.clip(c, 1, 3).astype(int) - 1], 0.0)
        if context is None:
            total, mass = np.full(len(gram), self.context_totals), np.full(len(gram), self.context_mass)
        else:
            total = _lookup(self.context_keys, self.context_totals, context)
            mass = _lookup(self.context_keys, self.context_mass, context)
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        return np.where(seen, np.maximum(c - discount, 0.0) / safe + mass / safe * lower, lower)


class Rows:
    """Equal-length rows of vocabulary indices, flat, with each k-gram's hash at its first byte."""

    def __init__(self, rows: np.ndarray):
        rows = np.asarray(rows)
        self.length = rows.shape[1]
        self.ids = rows.reshape(-1).astype(np.int64)
        self.column = np.arange(len(self.ids)) % self.length  # each byte's place in its row
        self.hashes = self.ids.astype(np.uint64)  # of the k-grams, k = self.k
        self.previous: np.ndarray | None = None  # of the (k-1)-grams
        self.k = 1

    def grow(self) -> None:
        self.previous, self.hashes = self.hashes, _extend(self.hashes, self.ids, self.k + 1)
        self.k += 1

    def starts(self) -> np.ndarray:
        """The positions where a whole k-gram lies inside one row."""
        return np.flatnonzero(self.column[: len(self.hashes)] <= self.length - self.k)


def ngram_losses(
    train: np.ndarray,
    evaluate: dict[str, np.ndarray],
    max_order: int,
    vocab_size: int,
    smoothings: tuple[str, ...] = tuple(SMOOTHINGS),
) -> dict[str, dict[str, list[float]]]:
    """{smoothing: {split: [mean loss in nats of the order-1 model, ..., of the order-max_order
    model]}}: counted on the rows of `train` (shape (rows, length)), scored on the rows of each
    array of `evaluate` (every byte but a row's first)."""
    if max_order < 1:
        raise ValueError("max_order must be at least 1")
    t = Rows(train)
    scored = {name: Rows(rows) for name, rows in evaluate.items()}
    targets = {name: np.flatnonzero(r.column >= 1) for name, r in scored.items()}
    # Per smoothing and split: each target's probability under the continuation chain so far, and
    # under the highest-order model that its row's history reaches.
    chain = {(s, name): np.full(len(targets[name]), 1.0 / vocab_size) for s in smoothings for name in scored}
    best = {key: value.copy() for key, value in chain.items()}
    out = {s: {name: [] for name in scored} for s in smoothings}
    starts = t.starts()
    grams, first, raw = np.unique(t.hashes[starts], return_index=True, return_counts=True)
    first = starts[first]
    for k in range(1, max_order + 1):
        contexts = None if k == 1 else t.previous[first]  # each distinct k-gram's first k - 1 bytes
        # Level k + 1's distinct n-grams give level k its continuation counts (and come next).
        t.grow()
        starts = t.starts()
        longer, longer_first, longer_raw = np.unique(t.hashes[starts], return_index=True, return_counts=True)
        longer_first = starts[longer_first]
        suffixes, preceded = np.unique(t.previous[longer_first + 1], return_counts=True)
        continuation = _lookup(suffixes, preceded, grams)
        queries = {}
        for name, r in scored.items():
            at = targets[name]
            valid = np.flatnonzero(r.column[at] >= k - 1)  # the byte has k - 1 bytes before it in its row
            begin = at[valid] - (k - 1)
            queries[name] = (valid, r.hashes[begin], None if k == 1 else r.previous[begin])
        for s in smoothings:
            top, lower_level = Level.count(grams, raw, contexts, s), Level.count(grams, continuation, contexts, s)
            for name in scored:
                valid, gram, context = queries[name]
                lower = chain[(s, name)][valid]
                best[(s, name)][valid] = top.prob(gram, context, lower)
                chain[(s, name)][valid] = lower_level.prob(gram, context, lower)
                out[s][name].append(float(-np.log(best[(s, name)]).mean()))
        for r in scored.values():
            r.grow()
        grams, first, raw = longer, longer_first, longer_raw
    return out


# The orders taken: the paper's baseline is 20, and the losses stop changing well before 100.
ORDERS = Range(1, 100)
# Memory of one pass per byte of the corpus, whatever the order (a few arrays of its length): the
# stored rows' peak_rss_mb, 1,090 MB on War and Peace (3.26 MB) and 1,527 MB on Linux (6.21 MB), a
# slope of about 150 bytes a byte.
BYTES_PER_CORPUS_BYTE = 150


def check_baseline(corpus, max_order: int, smoothings: tuple[str, ...]) -> None:
    """The order in ORDERS, the smoothings known, and the memory of one pass free: else one line."""
    import psutil

    from rnnbench.errors import UsageError

    if max_order not in ORDERS:
        raise UsageError(
            f"--order must be {ORDERS.text}, got {max_order}: every order is one more pass over the corpus "
            "(about 7 s on War and Peace) and two more rows"
        )
    need_mb = BYTES_PER_CORPUS_BYTE * corpus.n_bytes / 2**20
    free_mb = psutil.virtual_memory().available / 2**20
    if need_mb > free_mb:
        raise UsageError(
            f"counting n-grams of '{corpus.name}' ({corpus.n_bytes:,} bytes) needs about {need_mb:,.0f} MB, whatever "
            f"the order, and this machine has {free_mb:,.0f} MB free"
        )
    unknown = sorted(set(smoothings) - set(SMOOTHINGS))
    if unknown:
        raise UsageError(f"unknown smoothing {', '.join(unknown)}: choose from {', '.join(SMOOTHINGS)}")


def run_baseline(corpus, layout, max_order: int, smoothings: tuple[str, ...] = tuple(SMOOTHINGS)) -> list[Record]:
    """Count every order 1..max_order on the corpus's train streams under `layout` (data.Layout)
    and score its validation and test streams; one stored record (kind "baseline") per smoothing
    and order, each with the time and peak memory of the whole pass."""
    import resource
    import time

    from rnnbench import results
    from rnnbench.config import content_id
    from rnnbench.core.devices import environment, hardware

    check_baseline(corpus, max_order, smoothings)
    layout.check_fits(corpus.name, corpus.n_bytes)
    start = time.perf_counter()
    parts = {name: part.numpy() for name, part in layout.streams(corpus.encode()).items()}
    losses = ngram_losses(
        parts["train"], {"val": parts["val"], "test": parts["test"]}, max_order, corpus.vocab_size, smoothings
    )
    seconds = time.perf_counter() - start
    # The process's high-water mark (Linux reports kB): what counting needed at most.
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    env = environment("cpu") | {"corpus_source": corpus.source}
    sizes = dict(zip(("train_split_bytes", "val_split_bytes", "test_split_bytes"), layout.sizes(corpus.n_bytes)))
    records = []
    for s in smoothings:
        for order in range(1, max_order + 1):
            config = {
                "model": "ngram",
                "order": order,
                "smoothing": SMOOTHINGS[s],
                "dataset": corpus.name,
                "dataset_sha256": corpus.sha256,
                "split": layout.split,
                "train_fraction": layout.train_fraction,
                "val_fraction": layout.val_fraction,
                "batch_size": layout.batch_size,
                "seq_len": layout.seq_len,
                "hardware": hardware("cpu", 1).as_dict(),
            }  # counted in one thread
            val, test = losses[s]["val"][order - 1], losses[s]["test"][order - 1]
            metrics = {
                "val_loss_nats": val,
                "test_loss_nats": test,
                "test_bpc": test / np.log(2),
                "vocab_size": corpus.vocab_size,
                **sizes,
                "max_order": max_order,
                "seconds": seconds,
                "peak_rss_mb": peak_mb,
            }  # of the pass that made every order and smoothing
            records.append(results.make_record("baseline", content_id(config), "ok", config, env, metrics))
    return records
