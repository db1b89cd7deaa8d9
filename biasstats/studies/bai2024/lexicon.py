"""Per-stereotype lexicons for the Bai et al. (2024) word-association task.

Owns: which words belong to which stereotype, their role (group words: ``default`` from list A,
``stigma`` from list B) or valence (attributes: ``positive`` / ``negative``), which attribute
list a prompt variant used, and how a word written in a reply is recognised (:class:`Vocabulary`).

Sources (paths passed in, never copied):

* ``iat_stimuli.csv``: columns ``A``, ``B``, ``C``. Per dataset, the first half of ``C`` is
  positive, the second half negative. This is the attribute list of the ``replication``,
  ``instruction1``, ``instruction2`` (and chained / absolute) prompts.
* ``iat_stimuli_synonym.csv``: adds ``D`` (synonyms), the attribute list of the ``synonym``
  prompts, plus rows appended later (job words, full names). A synonym takes the valence of the
  ``C`` word in its row. Valences are looked up per stereotype, never from one pooled list (the
  authors' cleaning notebook pooled the lists and mislabelled eight negative words).
* ``iat_stimuli_analysis.csv``: an extended list split cleanly in halves per dataset.

Job-word rule. For arab, asian, black and hispanic the synonym file appends four rows whose
``C`` words (clerical workers, programmers, data analysts, secretaries) are absent from
``iat_stimuli.csv``, so they carry no valence there, and whose ``D`` words (executives,
managers, administrative supervisors, sales representatives) would inherit nothing. For every
word whose ``C`` row is not in ``iat_stimuli.csv`` the valence is the half of
``iat_stimuli_analysis.csv`` it falls in: executives, managers, administrative supervisors and
sales representatives are positive (high-status jobs, first half); clerical workers,
programmers, data analysts and secretaries are negative (second half). :data:`JOB_WORD_NOTE`
states this rule for the ledger.

Group words are the union of lists A and B over the three files (the synonym prompts use the
full names). A part of a name alone (``"Tanaka"``, ``"Hiroshi"``) is recognised as the full
name (``"Hiroshi Tanaka"``) when no other group word of that stereotype claims it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from biasstats.errors import DataError

JOB_WORD_NOTE = (
    "bai2024 job words: executives, managers, administrative supervisors, sales representatives "
    "are scored positive and clerical workers, programmers, data analysts, secretaries negative "
    "(their halves in iat_stimuli_analysis.csv; the synonym file gives them no valence)"
)

# Stereotype names as they appear across files, normalised by :func:`stereotype_key`.
_ALIASES = {"arabmuslim": "arab", "mentalillness": "mentalill"}

SYNONYM_VARIANTS = frozenset({"synonym"})


_NON_LETTER = re.compile("[^a-z]")
_QUOTES = re.compile(r"['\u2018\u2019`\u00b4]")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def stereotype_key(name: str) -> str:
    """Canonical stereotype name: ``"arab/muslim"``, ``"arabmuslim"`` -> ``"arab"``;
    ``"mental illness"`` -> ``"mentalill"``; other names lower-cased without punctuation."""
    key = _NON_LETTER.sub("", name.lower())
    return _ALIASES.get(key, key)


def stereotype_key_expr(names: pl.Expr) -> pl.Expr:
    """:func:`stereotype_key` as a vectorised expression over a Utf8 column (nulls stay null)."""
    return names.str.to_lowercase().str.replace_all(_NON_LETTER.pattern, "").replace(_ALIASES)


def normalize(text: str) -> tuple[str, ...]:
    """Tokens of ``text`` for matching: lower case, apostrophes and quotes dropped
    (``didn't`` -> ``didnt``), every other non-alphanumeric character a separator."""
    text = _QUOTES.sub("", text.lower())
    return tuple(_SEPARATORS.sub(" ", text).split())


@dataclass(frozen=True)
class Term:
    """One lexicon word: ``kind`` is ``"attribute"`` (``label`` = valence) or ``"group"``
    (``label`` = role). ``text`` is the canonical form as written in the stimulus file."""

    text: str
    kind: str
    label: str


def _inflections(tokens: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Plural/singular forms of the last token and the run-together form (``icecream``)."""
    *head, last = tokens
    forms = {last + "s", last + "es"}
    if last.endswith("s"):
        forms.add(last[:-1])
    if last.endswith("es"):
        forms.add(last[:-2])
    if last.endswith("ies"):
        forms.add(last[:-3] + "y")
    if last.endswith("y"):
        forms.add(last[:-1] + "ies")
    out = {(*head, f) for f in forms if f}
    if len(tokens) > 1:
        out.add(("".join(tokens),))
    out.discard(tokens)
    return out


def _name_parts(term: Term) -> set[tuple[str, ...]]:
    """Parts of a capitalised multi-word group word (a person's name: ``"Ali Al-Hassan"`` ->
    ``ali``, ``al hassan``, ``al``, ``hassan``); empty for anything else."""
    parts = term.text.split()
    if term.kind != "group" or len(parts) < 2 or not all(p[:1].isupper() for p in parts):
        return set()
    out = {normalize(p) for p in parts}
    out |= {(tok,) for p in parts for tok in normalize(p)}
    out.discard(normalize(term.text))
    return out


class Vocabulary:
    """Recognises the words of one prompt: its attribute list and the stereotype's group words.

    Each term is reachable by its exact tokens (priority 0), its inflections (1) and, for full
    names, any part of the name (2). A key claimed by several terms at its best priority is ambiguous and
    recognises nothing (:meth:`lookup` reports it)."""

    AMBIGUOUS = Term("", "ambiguous", "")

    def __init__(self, terms: list[Term]):
        claims: dict[tuple[str, ...], dict[int, set[Term]]] = defaultdict(lambda: defaultdict(set))
        for term in terms:
            base = normalize(term.text)
            claims[base][0].add(term)
            for form in _inflections(base):
                claims[form][1].add(term)
            for part in _name_parts(term):
                claims[part][2].add(term)
        self._keys: dict[tuple[str, ...], Term] = {}
        for key, by_level in claims.items():
            best = by_level[min(by_level)]
            self._keys[key] = next(iter(best)) if len(best) == 1 else self.AMBIGUOUS
        self.max_len = max((len(k) for k in self._keys), default=0)

    def lookup(self, key: tuple[str, ...]) -> Term | None:
        """The term written as ``key`` (normalised tokens), :attr:`AMBIGUOUS`, or None."""
        return self._keys.get(key)


@dataclass(frozen=True)
class Lexicon:
    """The words of one stereotype. ``attributes``: word -> valence (C and D words);
    ``groups``: word -> role; ``c_list`` / ``d_list``: the two prompt attribute lists."""

    stereotype: str
    category: str
    attributes: dict[str, str]
    groups: dict[str, str]
    c_list: tuple[str, ...]
    d_list: tuple[str, ...]
    _vocab: dict[str, Vocabulary] = field(default_factory=dict, compare=False, repr=False)

    def prompt_attributes(self, variant: str) -> tuple[str, ...]:
        """The attribute list the prompt of ``variant`` showed (D for synonym, else C)."""
        return self.d_list if variant in SYNONYM_VARIANTS else self.c_list

    def vocabulary(self, variant: str) -> Vocabulary:
        """The :class:`Vocabulary` of ``variant``'s prompt (cached)."""
        words = self.prompt_attributes(variant)
        if words not in self._vocab:
            terms = [Term(w, "attribute", self.attributes[w]) for w in words]
            terms += [Term(g, "group", role) for g, role in self.groups.items()]
            self._vocab[words] = Vocabulary(terms)
        return self._vocab[words]


def _read(path: Path, columns: list[str]) -> pl.DataFrame:
    """A stimulus CSV as text with its dataset name canonicalised; DataError if malformed."""
    try:
        df = pl.read_csv(path, infer_schema=False)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise DataError(f"cannot read stimulus file {path}: {exc}") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"stimulus file {path} lacks column(s) {missing}; expected {columns}")
    return df.select(columns).with_columns(stereotype_key_expr(pl.col("dataset")))


def _halves(words: list[str]) -> dict[str, str]:
    """First half positive, second half negative (the stimulus files' convention)."""
    half = len(words) // 2
    return {w: ("positive" if i < half else "negative") for i, w in enumerate(words)}


def _column(df: pl.DataFrame, name: str) -> list[str]:
    """The non-empty cells of a column, stripped, in file order."""
    return [w.strip() for w in df[name].drop_nulls().to_list() if w.strip()]


class _StereotypeSources:
    """The rows of one stereotype in each of the three stimulus files."""

    def __init__(self, base: pl.DataFrame, synonym: pl.DataFrame, analysis: pl.DataFrame):
        self.base, self.synonym, self.analysis = base, synonym, analysis

    def valences(self) -> dict[str, str]:
        """Word -> valence for every C and D word (rule in the module docstring)."""
        original = _halves(_column(self.base, "C"))
        extended = _halves(_column(self.analysis, "C"))
        out = dict(original)
        for c_word, d_word in self.synonym.select("C", "D").iter_rows():
            c_word, d_word = (c_word or "").strip(), (d_word or "").strip()
            if c_word in original:
                out.setdefault(d_word, original[c_word])
                continue
            for word in (c_word, d_word):
                if word and word in extended:
                    out.setdefault(word, extended[word])
        return out

    def groups(self) -> dict[str, str]:
        """Group word -> role, union of lists A (default) and B (stigma) over the files."""
        out: dict[str, str] = {}
        for df in (self.base, self.synonym, self.analysis):
            for col, role in (("A", "default"), ("B", "stigma")):
                for word in _column(df, col):
                    if out.setdefault(word, role) != role:
                        raise DataError(f"group word {word!r} is both default and stigma")
        return out


def load_lexicons(stimuli: Path, synonym: Path, analysis: Path) -> dict[str, Lexicon]:
    """Build every stereotype's :class:`Lexicon` from the three stimulus files."""
    base = _read(stimuli, ["category", "dataset", "A", "B", "C"])
    syn = _read(synonym, ["category", "dataset", "A", "B", "C", "D"])
    ana = _read(analysis, ["category", "dataset", "A", "B", "C"])
    out: dict[str, Lexicon] = {}
    for (name,), rows in base.group_by("dataset", maintain_order=True):
        sources = _StereotypeSources(
            rows, syn.filter(pl.col("dataset") == name), ana.filter(pl.col("dataset") == name)
        )
        valences = sources.valences()
        d_list = tuple(_column(sources.synonym, "D"))
        missing = [w for w in d_list if w not in valences]
        if missing:
            raise DataError(f"stimulus synonyms {missing} of {name!r} have no valence")
        out[name] = Lexicon(
            stereotype=name,
            category=rows["category"][0],
            attributes=valences,
            groups=sources.groups(),
            c_list=tuple(_column(rows, "C")),
            d_list=d_list,
        )
    return out

