"""A character n-gram baseline: interpolated Kneser-Ney over the same bytes and splits as the RNNs.

    >>> from rnnbench.data import load_corpus
    >>> from rnnbench.ngram import kneser_ney_loss
    >>> corpus = load_corpus("synthetic")
    >>> ids = corpus.encode().numpy()
    >>> n_train, n_val, _ = corpus.split_sizes
    >>> round(kneser_ney_loss(ids, n_train, n_train + n_val, len(ids), order=5, vocab_size=corpus.vocab_size), 3)   # doctest: +SKIP

The model is interpolated Kneser-Ney (Chen & Goodman 1998) with one absolute discount per order,
D = n1 / (n1 + 2 n2) from that order's counts of counts. The highest order uses raw counts; lower
orders use continuation counts (how many distinct bytes precede the n-gram); the unigram level is
interpolated with the uniform distribution over the vocabulary, so no byte has probability zero.
A context never seen in training passes the whole probability to the next lower order.

Counts come from the train split only; each test byte is predicted from the `order` - 1 bytes
before it in the file. Counting is vectorised with numpy: every n-gram is a 64-bit polynomial hash
of its bytes (base 257, exact up to 7 bytes, wrapping modulo 2^64 above; a collision among the few
million n-grams of a corpus has probability about 1e-7), and counts are np.unique over hashes.
Orders are processed one at a time, from 1 up, updating each test byte's probability, so memory
stays a few arrays of the corpus's length.
"""

from __future__ import annotations

import numpy as np

BASE = np.uint64(257)


def _extend(prefix_hashes: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Hashes of the k-grams starting at 0 .. len(ids) - k, from those of the (k-1)-grams."""
    with np.errstate(over="ignore"):
        return prefix_hashes[: len(ids) - k + 1] * BASE + ids[k - 1:].astype(np.uint64)


def _discount(counts: np.ndarray) -> float:
    n1, n2 = int((counts == 1).sum()), int((counts == 2).sum())
    return n1 / (n1 + 2 * n2) if n1 else 0.5


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == query] for each query, 0 where the query is not a key (keys sorted)."""
    at = np.searchsorted(keys, queries)
    at = np.minimum(at, len(keys) - 1)
    found = keys[at] == queries
    return np.where(found, values[at], 0)


def kneser_ney_loss(ids: np.ndarray, train_end: int, start: int, end: int, order: int, vocab_size: int) -> float:
    """Mean negative log-probability, in nats, of ids[start:end] under an interpolated Kneser-Ney
    model of `order` counted on ids[:train_end] (ids: the whole text as vocabulary indices)."""
    ids = np.asarray(ids, dtype=np.int64)
    train = ids[:train_end]
    targets = np.arange(start, end)
    whole_h = ids.astype(np.uint64)  # k-gram hashes over the whole text, for the positions scored
    train_h = train.astype(np.uint64)
    next_train_h = _extend(train_h, train, 2)
    prob = prefix_h = whole_prefix = None  # the (k-1)-gram hashes, from order 2 on
    for k in range(1, order + 1):
        # Counts of the order-k n-grams: raw at the highest order, continuation counts below it.
        grams, first, raw = np.unique(train_h, return_index=True, return_counts=True)
        if k == order:
            counts = raw
        else:
            longer, longer_first = np.unique(next_train_h, return_index=True)
            suffixes = train_h[longer_first + 1]  # each distinct (k+1)-gram's last k bytes
            keys, continuation = np.unique(suffixes, return_counts=True)
            counts = _lookup(keys, continuation, grams)
        discount = _discount(counts[counts > 0])
        # Each n-gram scored: the k bytes ending at the target, if there are k of them.
        ending = targets - k + 1
        scored = ending >= 0
        query = np.zeros(len(targets), dtype=np.uint64)
        query[scored] = whole_h[ending[scored]]
        c = np.where(scored, _lookup(grams, counts, query), 0).astype(np.float64)
        if k == 1:
            total, distinct = counts.sum(), (counts > 0).sum()
            prob = np.maximum(c - discount, 0) / total + discount * distinct / total / vocab_size
        else:
            # Contexts: the first k - 1 bytes of each distinct k-gram, with their totals.
            contexts = prefix_h[first]
            keys, inverse = np.unique(contexts, return_inverse=True)
            totals = np.bincount(inverse, weights=counts).astype(np.float64)
            distinct = np.bincount(inverse, weights=counts > 0).astype(np.float64)
            context_query = np.zeros(len(targets), dtype=np.uint64)
            context_query[scored] = whole_prefix[ending[scored]]
            total = np.where(scored, _lookup(keys, totals, context_query), 0.0)
            n_follow = np.where(scored, _lookup(keys, distinct, context_query), 0.0)
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = np.maximum(c - discount, 0) / safe + discount * n_follow / safe * prob
            prob = np.where(seen, mixed, prob)
        if k == order:
            break
        prefix_h, whole_prefix = train_h, whole_h
        train_h, next_train_h = next_train_h, _extend(next_train_h, train, k + 2)
        whole_h = _extend(whole_h, ids, k + 1)
    return float(-np.log(prob).mean())


SMOOTHING = "interpolated Kneser-Ney, one discount per order"


def run_baseline(corpus, order: int) -> dict:
    """Count an order-`order` model on the corpus's train split and score its test split; the
    stored record (kind "baseline") of it, with the time and peak memory it took."""
    import resource
    import time

    from rnnbench import results
    from rnnbench.config import content_id
    from rnnbench.devices import environment, hardware

    if order < 1:
        from rnnbench.errors import UsageError

        raise UsageError(f"--order must be at least 1, got {order}")
    start = time.perf_counter()
    ids = corpus.encode().numpy().astype(np.int64)
    n_train, n_val, _ = corpus.split_sizes
    loss = kneser_ney_loss(ids, n_train, n_train + n_val, len(ids), order, corpus.vocab_size)
    seconds = time.perf_counter() - start
    config = {"model": "ngram", "order": order, "smoothing": SMOOTHING, "dataset": corpus.name,
              "dataset_sha256": corpus.sha256, "hardware": hardware("cpu", 1).as_dict()}  # counted in one thread
    metrics = {"test_loss_nats": loss, "test_bpc": loss / np.log(2), "vocab_size": corpus.vocab_size,
               "seconds": seconds,
               # The process's high-water mark (Linux reports kB): what counting needed at most.
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    env = environment("cpu") | {"corpus_source": corpus.source}
    return results.make_record("baseline", content_id(config), "ok", config, env, metrics)
