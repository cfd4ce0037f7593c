"""Data for bench_dedup.py: real text from Python's own documentation (stdlib `pydoc_data.topics`),
realistic near-duplicate edits of it, and structured random vectors with planted near-duplicates."""

from __future__ import annotations
import re
import numpy as np

SYNONYMS = {
    'returns': 'gives back',
    'return': 'give back',
    'function': 'routine',
    'functions': 'routines',
    'object': 'value',
    'objects': 'values',
    'example': 'instance',
    'must': 'has to',
    'can': 'may',
    'also': 'as well',
    'called': 'invoked',
    'used': 'employed',
    'use': 'employ',
    'usually': 'typically',
    'normally': 'ordinarily',
    'however': 'but',
    'because': 'since',
    'begin': 'start',
    'begins': 'starts',
    'end': 'finish',
    'large': 'big',
    'small': 'little',
    'create': 'make',
    'creates': 'makes',
    'created': 'made',
    'specified': 'given',
    'specify': 'give',
    'allowed': 'permitted',
    'method': 'member function',
    'methods': 'member functions',
    'error': 'failure',
    'raised': 'thrown',
    'raise': 'throw',
    'statement': 'instruction',
    'following': 'next',
    'first': 'initial',
    'contains': 'holds',
    'contain': 'hold',
    'whether': 'if',
    'determine': 'decide',
    'determines': 'decides',
    'evaluated': 'computed',
    'evaluates': 'computes',
}
NAMES = ['spam', 'eggs', 'ham', 'foo', 'bar', 'baz', 'qux', 'widget', 'alice', 'bob', 'frobnicate', 'Parrot']


def pydoc_paragraphs(min_words: int = 20, max_words: int = 80) -> list[str]:
    "Prose paragraphs of the Python reference (`pydoc_data.topics`, ships with CPython), deduplicated."
    from pydoc_data.topics import topics

    paras = [' '.join(p.split()) for v in topics.values() for p in re.split(r'\n\s*\n', v)]
    ok = [p for p in paras if min_words <= len(p.split()) <= max_words and p[:1].isupper() and p.endswith('.')]
    return list(dict.fromkeys(ok))


def pydoc_sentences(min_words: int = 6, max_words: int = 30) -> list[str]:
    "Sentences of the Python reference prose."
    out = []
    for p in pydoc_paragraphs(5, 400):
        for s in re.split(r'(?<=[.!?])\s+(?=[A-Z])', p):
            if min_words <= len(s.split()) <= max_words:
                out.append(s)
    return list(dict.fromkeys(out))


def _typo(w: str, rng) -> str:
    if len(w) < 4:
        return w
    k = int(rng.integers(1, len(w) - 2))
    op = rng.integers(3)
    if op == 0:
        return w[:k] + w[k + 1] + w[k] + w[k + 2 :]  # swap
    if op == 1:
        return w[:k] + w[k + 1 :]  # drop
    return w[:k] + w[k] + w[k:]  # double


def edit_reorder(t: str, rng) -> str:
    "Swap two sentences, else two comma clauses."
    ss = re.split(r'(?<=[.!?])\s+(?=[A-Z])', t)
    if len(ss) > 1:
        a, b = rng.choice(len(ss), 2, replace=False)
        ss[a], ss[b] = ss[b], ss[a]
        return ' '.join(ss)
    cl = t.rstrip('.').split(', ')
    if len(cl) > 1:
        a, b = rng.choice(len(cl), 2, replace=False)
        cl[a], cl[b] = cl[b], cl[a]
        s = ', '.join(cl)
        return s[0].upper() + s[1:] + '.'
    return t


def edit_synonyms(t: str, rng, k: int = 3) -> str:
    "Replace up to `k` words with synonyms."
    w = t.split()
    idx = [i for i, x in enumerate(w) if x.lower().strip('.,;:') in SYNONYMS]
    for i in rng.permutation(idx)[:k]:
        core = w[i].strip('.,;:')
        w[i] = w[i].replace(core, SYNONYMS[core.lower()])
    return ' '.join(w)


def edit_typos(t: str, rng, k: int = 2) -> str:
    "Typos in `k` words."
    w = t.split()
    for i in rng.choice(len(w), min(k, len(w)), replace=False):
        w[i] = _typo(w[i], rng)
    return ' '.join(w)


def edit_numbers_names(t: str, rng) -> str:
    "Change numbers, and quoted identifiers / a capitalised name, to other ones."
    t2 = re.sub(r'\d+', lambda m: str(int(m.group()) + int(rng.integers(1, 9))), t)
    t2 = re.sub(r'"([A-Za-z_][A-Za-z_0-9]*)(\(\))?"', lambda m: f'"{NAMES[int(rng.integers(len(NAMES)))]}{m.group(2) or ""}"', t2, count=2)
    if t2 == t:
        t2 = t.replace(' Python', ' CPython', 1) if ' Python' in t else t.rstrip('.') + f' (see section {int(rng.integers(2, 30))}).'
    return t2


EDITS = {'reorder': edit_reorder, 'synonyms': edit_synonyms, 'typos': edit_typos, 'numbers_names': edit_numbers_names}


def edit_text(t: str, rng, n_edits: int = 2) -> tuple[str, list[str]]:
    "`t` with `n_edits` different realistic edits, and their names."
    names = list(rng.choice(list(EDITS), n_edits, replace=False))
    for n in names:
        t = EDITS[n](t, rng)
    return t, names


def labelled_near_dups(n_orig: int = 600, n_dup: int = 400, seed: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    "Real paragraphs + edited copies: texts, true group label per text, edit names per text ('' for originals)."
    rng = np.random.default_rng(seed)
    paras = pydoc_paragraphs()
    orig = [paras[i] for i in rng.choice(len(paras), min(n_orig, len(paras)), replace=False)]
    texts, labels, edits = list(orig), list(range(len(orig))), [''] * len(orig)
    for g in rng.choice(len(orig), n_dup, replace=len(orig) < n_dup):
        t, names = edit_text(orig[g], rng, int(rng.integers(1, 4)))
        if t == orig[g]:
            continue
        texts.append(t)
        labels.append(int(g))
        edits.append('+'.join(names))
    perm = rng.permutation(len(texts))
    return [texts[i] for i in perm], np.array(labels)[perm], [edits[i] for i in perm]


def short_examples(n: int = 100_000, dup_frac: float = 0.1, seed: int = 0) -> tuple[list[str], np.ndarray]:
    "`n` short texts (two real reference sentences each) with `dup_frac` lightly edited copies; true group per text."
    rng = np.random.default_rng(seed)
    sents = pydoc_sentences(6, 18)
    n_dup = int(n * dup_frac)
    n_orig = n - n_dup
    pairs = set()
    while len(pairs) < n_orig:  # unordered pairs of different sentences: "A B" and "B A" would be near-duplicates
        a, b = sorted(int(x) for x in rng.choice(len(sents), 2, replace=False))
        pairs.add((a, b))
    orig = [f'{sents[a]} {sents[b]}' if rng.random() < 0.5 else f'{sents[b]} {sents[a]}' for a, b in sorted(pairs)]
    texts, labels = list(orig), list(range(n_orig))
    light = [edit_typos, edit_numbers_names, lambda t, r: edit_synonyms(t, r, 1)]
    for g in rng.integers(0, n_orig, n_dup):
        texts.append(light[int(rng.integers(3))](orig[g], rng))
        labels.append(int(g))
    return texts, np.array(labels)


def planted_vectors(
    n: int = 100_000, d: int = 384, n_topics: int = 2000, dup_frac: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Structured random unit vectors: topic centre + noise (same-topic cosine ~0.5), and `dup_frac` planted
    near-duplicates (cosine ~0.97 to their source). Returns vectors and the true group per row."""
    rng = np.random.default_rng(seed)
    n_dup = int(n * dup_frac)
    n_orig = n - n_dup
    centres = rng.standard_normal((n_topics, d)).astype(np.float32)
    X = np.empty((n, d), np.float32)
    X[:n_orig] = centres[rng.integers(0, n_topics, n_orig)] + rng.standard_normal((n_orig, d), dtype=np.float32)
    X[:n_orig] /= np.linalg.norm(X[:n_orig], axis=1, keepdims=True)
    src = rng.integers(0, n_orig, n_dup)
    X[n_orig:] = X[src] + rng.standard_normal((n_dup, d), dtype=np.float32) * (0.25 / np.sqrt(d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, np.r_[np.arange(n_orig), src]


def pair_prf(pred: np.ndarray, true: np.ndarray) -> tuple[float, float, int, int]:
    "Pairwise precision, recall, predicted pairs and true pairs of predicted vs true group labels."
    import pandas as pd

    c2 = lambda s: int((s * (s - 1) // 2).sum())
    both = c2(pd.Series(list(zip(pred, true))).value_counts().to_numpy())
    pp, tp = c2(pd.Series(pred).value_counts().to_numpy()), c2(pd.Series(true).value_counts().to_numpy())
    return (both / pp if pp else 1.0), (both / tp if tp else 1.0), pp, tp
