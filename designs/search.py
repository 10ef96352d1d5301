"""The evolutionary search of a peptide binder design campaign: score, rank, select, breed.

Each candidate binder is predicted with its target elsewhere (Boltz-2); what comes back, per
candidate, is the binder-target pair ipTM and the binder's per-residue pLDDT (both 0..1). Here
those become a `Scored` candidate, candidates are ranked by NSGA-II over three objectives (pair
ipTM, binder mean pLDDT, developability; all maximised), diverse elites are kept, and the
elites breed the next generation by pLDDT-guided mutation and single-point crossover.

The campaign ranks and charts candidates by one number:

    fitness = 0.6 * pair_iptm + 0.3 * binder_plddt + 0.1 * developability

Developability is 1 minus a liability penalty capped at 0.25 (so it lies in [0.75, 1]); each
liability found adds LIABILITY_PENALTY (0.08), once however often it occurs: a hydrophobic
fraction (AFILMVWY) above 0.58, a charged fraction (DEKR) above 0.45, a P/G fraction above
0.35, a run of one residue 4 or more long, a triple of residues that occurs twice (not
overlapping).

A candidate is a string of one-letter amino acids, by binder type:
- linear, cyclic: letters of ALPHABET (the 19 amino acids without C).
- bicyclic: exactly three C, one of them last, with at least one residue between any two C (the
  three arms of the linker); the rest from ALPHABET. Mutation never changes a C nor adds one.
- glycopeptide: exactly one lower-case n, s or t marks the residue carrying the sugar; the rest
  upper case from ALPHABET. Mutation never changes the marked residue.

Every function is deterministic given the `random.Random` passed in: nothing here uses the
global random module or iterates a set, and ties are broken by the sequence string, so a
campaign run again with the same seed breeds the same candidates.
"""

import math
import random
from dataclasses import dataclass

ALPHABET = "ADEFGHIKLMNPQRSTVWY"  # the 20 amino acids but C, which only a bicyclic has
BINDER_TYPES = ("linear", "cyclic", "bicyclic", "glycopeptide")
GLYCO_MARKS = "nst"  # N-, S- or T-linked sugar

LIABILITY_PENALTY = 0.08  # per liability found
PENALTY_CAP = 0.25
HYDROPHOBIC = "AFILMVWY"
CHARGED = "DEKR"

# Substitutions within a group keep a residue's character (size, charge, aromaticity); one is
# chosen with CONSERVATIVE_CHANCE, else any other letter of ALPHABET.
CONSERVATIVE_GROUPS = ("ILVM", "FWY", "KRH", "DE", "NQ", "ST", "AG", "P")
CONSERVATIVE_CHANCE = 0.6
INDEL_CHANCE = 0.1  # per child, when the length may vary
MAX_RATE = 0.85
CHILD_TRIES = 200  # breeding tries per child before falling back to a random candidate
RANDOM_TRIES = 10_000  # random candidates tried before giving up: the space is too small

_GROUP_OF = {letter: group for group in CONSERVATIVE_GROUPS for letter in group}


def _check_type(binder_type: str) -> None:
    if binder_type not in BINDER_TYPES:
        raise ValueError(f"unknown binder type {binder_type!r}; one of {BINDER_TYPES}")


def _bicyclic_cys_ok(sequence: str) -> bool:
    positions = [i for i, letter in enumerate(sequence) if letter == "C"]
    if len(positions) != 3 or positions[-1] != len(sequence) - 1:
        return False
    return positions[1] - positions[0] >= 2 and positions[2] - positions[1] >= 2


def valid(sequence: str, binder_type: str, length_min: int, length_max: int) -> bool:
    """Whether the sequence is a candidate of this binder type within the length bounds."""
    _check_type(binder_type)
    if not length_min <= len(sequence) <= length_max:
        return False
    if binder_type == "bicyclic":
        return _bicyclic_cys_ok(sequence) and all(c in ALPHABET or c == "C" for c in sequence)
    if binder_type == "glycopeptide":
        marks = [c for c in sequence if c.islower()]
        return (
            len(marks) == 1
            and marks[0] in GLYCO_MARKS
            and all(c in ALPHABET or c == marks[0] for c in sequence)
        )
    return all(c in ALPHABET for c in sequence)


def _shortest(binder_type: str) -> int:
    return 5 if binder_type == "bicyclic" else 1  # bicyclic: C.C.C at least


def random_candidate(rng: random.Random, binder_type: str, length_min: int, length_max: int) -> str:
    """A uniformly drawn valid candidate: its length, then its letters (and, for a bicyclic,
    the two free C positions among those allowed; for a glycopeptide, the marked residue)."""
    _check_type(binder_type)
    low = max(length_min, _shortest(binder_type))
    if low > length_max:
        raise ValueError(f"no {binder_type} candidate has a length in [{length_min}, {length_max}]")
    length = rng.randint(low, length_max)
    letters = [rng.choice(ALPHABET) for _ in range(length)]
    if binder_type == "bicyclic":
        last = length - 1
        pairs = [(i, j) for i in range(last) for j in range(i + 2, last - 1)]
        i, j = rng.choice(pairs)
        letters[i] = letters[j] = letters[last] = "C"
    elif binder_type == "glycopeptide":
        letters[rng.randrange(length)] = rng.choice(GLYCO_MARKS)
    return "".join(letters)


def _has_run(sequence: str, length: int) -> bool:
    run = 1
    for previous, letter in zip(sequence, sequence[1:], strict=False):
        run = run + 1 if letter == previous else 1
        if run >= length:
            return True
    return False


def _has_repeated_triple(sequence: str) -> bool:
    """Whether three residues occur twice without overlapping (GGGG is a run, not a repeat)."""
    first: dict[str, int] = {}
    for i in range(len(sequence) - 2):
        triple = sequence[i : i + 3]
        if i - first.setdefault(triple, i) >= 3:
            return True
    return False


def developability(sequence: str) -> float:
    """1 minus LIABILITY_PENALTY for each liability the sequence has (see the module's
    docstring), the penalty capped at PENALTY_CAP; case does not matter."""
    sequence = sequence.upper()
    if not sequence:
        return 1.0
    n = len(sequence)
    liabilities = [
        sum(c in HYDROPHOBIC for c in sequence) / n > 0.58,
        sum(c in CHARGED for c in sequence) / n > 0.45,
        sum(c in "PG" for c in sequence) / n > 0.35,
        _has_run(sequence, 4),
        _has_repeated_triple(sequence),
    ]
    return 1.0 - min(PENALTY_CAP, LIABILITY_PENALTY * sum(liabilities))


def fitness(
    pair_iptm: float, binder_plddt: float, developability: float, constraints: float = 1.0
) -> float:
    """The one number the campaign ranks and charts candidates by: scaled by the fraction of
    the campaign's distance constraints its structure meets (designs/constraints.py)."""
    return (0.6 * pair_iptm + 0.3 * binder_plddt + 0.1 * developability) * constraints


@dataclass(frozen=True)
class Scored:
    """A predicted candidate: its sequence, what the prediction said of it and its scores."""

    sequence: str
    pair_iptm: float
    binder_plddt: float  # mean of residue_plddt
    residue_plddt: tuple[float, ...]
    developability: float
    fitness: float
    constraints: float = 1.0  # the fraction of the campaign's distance constraints met

    @classmethod
    def of(
        cls, sequence: str, pair_iptm: float, residue_plddt, constraints: float = 1.0
    ) -> "Scored":
        """Scores a candidate from its prediction: one pLDDT per residue of the binder, and
        the fraction of the campaign's distance constraints its structure meets."""
        plddt = tuple(float(p) for p in residue_plddt)
        if len(plddt) != len(sequence):
            raise ValueError(f"{len(plddt)} pLDDT values for a binder of {len(sequence)} residues")
        mean = sum(plddt) / len(plddt) if plddt else 0.0
        dev = developability(sequence)
        return cls(
            sequence=sequence,
            pair_iptm=float(pair_iptm),
            binder_plddt=mean,
            residue_plddt=plddt,
            developability=dev,
            fitness=fitness(float(pair_iptm), mean, dev, float(constraints)),
            constraints=float(constraints),
        )


# What NSGA-II weighs (the constraints met: 1.0 for all where a campaign has none).
OBJECTIVES = ("pair_iptm", "binder_plddt", "developability", "constraints")


def _objectives(s: Scored) -> tuple[float, ...]:
    return tuple(getattr(s, name) for name in OBJECTIVES)


def _dominates(a: Scored, b: Scored) -> bool:
    oa, ob = _objectives(a), _objectives(b)
    return all(x >= y for x, y in zip(oa, ob, strict=True)) and oa != ob


def _fronts(scored: list[Scored]) -> list[list[int]]:
    """Indices of the non-dominated fronts, best first (Deb's fast non-dominated sort)."""
    beaten_by = [0] * len(scored)  # how many candidates dominate each
    beats: list[list[int]] = [[] for _ in scored]
    for i, a in enumerate(scored):
        for j, b in enumerate(scored):
            if i != j and _dominates(a, b):
                beats[i].append(j)
                beaten_by[j] += 1
    fronts = []
    front = [i for i in range(len(scored)) if beaten_by[i] == 0]
    while front:
        fronts.append(front)
        following = []
        for i in front:
            for j in beats[i]:
                beaten_by[j] -= 1
                if beaten_by[j] == 0:
                    following.append(j)
        front = sorted(following)
    return fronts


def _crowding(front: list[Scored]) -> list[float]:
    """Each candidate's crowding distance in its front: the normalised size of the box its
    neighbours make, per objective; the ends of an objective's range are infinite. An objective
    all the front shares adds nothing (no ends to favour)."""
    distance = [0.0] * len(front)
    for k in range(len(OBJECTIVES)):
        order = sorted(
            range(len(front)), key=lambda i: (_objectives(front[i])[k], front[i].sequence)
        )
        low = _objectives(front[order[0]])[k]
        high = _objectives(front[order[-1]])[k]
        if high <= low:
            continue
        distance[order[0]] = distance[order[-1]] = math.inf
        for before, here, after in zip(order, order[1:], order[2:], strict=False):
            span = _objectives(front[after])[k] - _objectives(front[before])[k]
            distance[here] += span / (high - low)
    return distance


def nsga2_order(scored: list[Scored]) -> list[Scored]:
    """The candidates best first by NSGA-II: non-dominated fronts over (pair ipTM, binder pLDDT,
    developability, constraints met), within a front the larger crowding distance first (the
    spread of the front is kept), then the higher fitness, then the sequence."""
    ordered = []
    for indices in _fronts(scored):
        front = [scored[i] for i in indices]
        distance = _crowding(front)
        ranked = sorted(
            range(len(front)),
            key=lambda i: (-distance[i], -front[i].fitness, front[i].sequence),
        )
        ordered.extend(front[i] for i in ranked)
    return ordered


def similarity(a: str, b: str) -> float:
    """Identical residues, position by position and case-insensitive, over the longer length."""
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    same = sum(x == y for x, y in zip(a.upper(), b.upper(), strict=False))
    return same / longest


def select_elites(scored: list[Scored], n: int, floor: float = 0.92) -> list[Scored]:
    """Up to n elites, best first by `nsga2_order`, each less similar than `floor` to every one
    kept before it, so the next generation does not breed from near-copies. When too few
    differ enough, the best of the rest follow, in order, to make n (when there are n)."""
    kept: list[Scored] = []
    skipped: list[Scored] = []
    for candidate in nsga2_order(scored):
        if len(kept) >= n:
            break
        if all(similarity(candidate.sequence, k.sequence) < floor for k in kept):
            kept.append(candidate)
        else:
            skipped.append(candidate)
    # Fewer than n kept means the walk went to the end: `skipped` is all the rest, in order.
    return kept + skipped[: max(0, n - len(kept))]


def mutation_rate(base: float, stagnant: int) -> float:
    """The per-residue mutation rate, raised while the best has not improved for `stagnant`
    generations, to leave a local optimum."""
    return min(MAX_RATE, base * (1 + 0.35 * stagnant))


def _mutable(sequence: str, binder_type: str) -> list[int]:
    """Positions mutation may change or delete: not the C of a bicyclic, nor the marked residue
    of a glycopeptide."""
    if binder_type == "bicyclic":
        return [i for i, c in enumerate(sequence) if c != "C"]
    if binder_type == "glycopeptide":
        return [i for i, c in enumerate(sequence) if not c.islower()]
    return list(range(len(sequence)))


def _substitute(rng: random.Random, letter: str) -> str:
    if rng.random() < CONSERVATIVE_CHANCE:
        similar = [c for c in _GROUP_OF.get(letter, "") if c != letter]
        if similar:
            return rng.choice(similar)
    return rng.choice([c for c in ALPHABET if c != letter])


def _aligned(plddt, length: int) -> tuple[float, ...]:
    """pLDDT by position for a sequence of this length: cut, or padded with the mean."""
    plddt = tuple(plddt)
    mean = sum(plddt) / len(plddt) if plddt else 0.5
    return plddt[:length] + (mean,) * (length - len(plddt))


def _mutate_sequence(
    rng: random.Random,
    sequence: str,
    plddt,
    rate: float,
    binder_type: str,
    length_min: int,
    length_max: int,
) -> str:
    letters = list(sequence)
    plddt = _aligned(plddt, len(sequence))
    mutable = _mutable(sequence, binder_type)
    if mutable:
        weakness = [1.0 - plddt[i] for i in mutable]
        mean = sum(weakness) / len(weakness)
        if max(weakness) - min(weakness) < 1e-12:
            chance = [rate] * len(mutable)
        else:
            chance = [min(1.0, max(0.0, rate * w / mean)) for w in weakness]
        changed = False
        for i, p in zip(mutable, chance, strict=True):
            if rng.random() < p:
                letters[i] = _substitute(rng, letters[i])
                changed = True
        if not changed:
            lowest = min(plddt[i] for i in mutable)
            i = rng.choice([i for i in mutable if plddt[i] == lowest])
            letters[i] = _substitute(rng, letters[i])
    mutated = "".join(letters)
    if length_min < length_max and rng.random() < INDEL_CHANCE:
        mutated = _indel(rng, mutated, binder_type, length_min, length_max)
    return mutated


def _indel(rng: random.Random, sequence: str, binder_type: str, low: int, high: int) -> str:
    """One residue inserted or deleted, within the bounds and keeping the sequence valid; the
    sequence unchanged when neither can be."""
    options = []
    if len(sequence) < high:
        # Not after a bicyclic's last C; anywhere else only widens the gaps between C.
        ends = len(sequence) if binder_type == "bicyclic" else len(sequence) + 1
        options += [("insert", i) for i in range(ends)]
    if len(sequence) > low:
        options += [
            ("delete", i)
            for i in _mutable(sequence, binder_type)
            if valid(sequence[:i] + sequence[i + 1 :], binder_type, low, high)
        ]
    if not options:
        return sequence
    kind, i = rng.choice(options)
    if kind == "insert":
        return sequence[:i] + rng.choice(ALPHABET) + sequence[i:]
    return sequence[:i] + sequence[i + 1 :]


def mutate(
    rng: random.Random,
    parent: Scored,
    rate: float,
    binder_type: str,
    length_min: int,
    length_max: int,
) -> str:
    """A child of the parent by point substitutions, where the prediction was least sure.

    Position i changes with chance rate * (1 - pLDDT_i) / mean(1 - pLDDT) over the mutable
    positions (clipped to [0, 1]; `rate` when all pLDDT are equal), so the weakly predicted
    residues are the ones explored. At least one position changes (the weakest, if none drew).
    A substitution is conservative (CONSERVATIVE_GROUPS) with chance 0.6, else any other
    letter. With chance 0.1, when the bounds allow, one residue is then inserted or deleted.
    The C of a bicyclic and the marked residue of a glycopeptide are never touched.
    """
    _check_type(binder_type)
    return _mutate_sequence(
        rng, parent.sequence, parent.residue_plddt, rate, binder_type, length_min, length_max
    )


def crossover(
    rng: random.Random, a: str, b: str, binder_type: str, length_min: int, length_max: int
) -> str:
    """A single-point crossover: a's prefix up to a cut, b's suffix from it. The cut is drawn
    among those giving a valid candidate (for a bicyclic, three well-spaced C; for a
    glycopeptide, one marker); when there is none, a copy of `a` with one point mutation."""
    _check_type(binder_type)
    cuts = [
        k
        for k in range(1, min(len(a), len(b)))
        if valid(a[:k] + b[k:], binder_type, length_min, length_max)
    ]
    if cuts:
        k = rng.choice(cuts)
        return a[:k] + b[k:]
    # Uniform pLDDT and a rate of one residue in len(a): one weakest-position change, mostly.
    return _mutate_sequence(rng, a, [0.5] * len(a), 1 / len(a), binder_type, length_min, length_max)


def breed(
    rng: random.Random,
    elites: list[Scored],
    n: int,
    *,
    rate: float,
    crossover_rate: float,
    binder_type: str,
    length_min: int,
    length_max: int,
    seen: set[str],
) -> list[str]:
    """n new candidates, distinct from each other and from `seen` (every sequence an earlier
    generation had; compared case-sensitively).

    Each child is, with chance `crossover_rate` (and at least two elites), a crossover of two
    distinct elites drawn uniformly, then mutated at `rate` with the first parent's pLDDT by
    position (padded with its mean where the child is longer); otherwise a mutation of one
    elite, the earlier ones in the list drawn more often (weights len(elites) - index). A child
    already seen is bred again, up to 200 times, then random candidates are drawn until one is
    new. Without elites every child is random. ValueError when no new candidate can be found
    (the bounds leave too few sequences).
    """
    _check_type(binder_type)
    weights = [len(elites) - i for i in range(len(elites))]
    taken = set()  # membership only: never iterated, so the order stays the rng's
    children: list[str] = []
    for _ in range(n):
        child = None
        for _ in range(CHILD_TRIES if elites else 0):
            if len(elites) >= 2 and rng.random() < crossover_rate:
                i, j = rng.sample(range(len(elites)), 2)
                first = elites[i]
                mixed = crossover(
                    rng, first.sequence, elites[j].sequence, binder_type, length_min, length_max
                )
                candidate = _mutate_sequence(
                    rng, mixed, first.residue_plddt, rate, binder_type, length_min, length_max
                )
            else:
                parent = rng.choices(elites, weights=weights)[0]
                candidate = mutate(rng, parent, rate, binder_type, length_min, length_max)
            if candidate not in seen and candidate not in taken:
                child = candidate
                break
        if child is None:
            for _ in range(RANDOM_TRIES):
                candidate = random_candidate(rng, binder_type, length_min, length_max)
                if candidate not in seen and candidate not in taken:
                    child = candidate
                    break
            else:
                raise ValueError(
                    f"no new {binder_type} candidate of length {length_min}-{length_max} found"
                )
        taken.add(child)
        children.append(child)
    return children


def plateaued(best: list[float], window: int = 5, tolerance: float = 1e-3) -> bool:
    """Whether the best fitness, one entry per generation, rose less than `tolerance` over the
    last `window` generations: the campaign may stop early."""
    return len(best) > window and best[-1] - best[-1 - window] < tolerance
