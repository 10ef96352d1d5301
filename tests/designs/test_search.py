"""The campaign's evolutionary search on its own: valid candidates of every binder type,
pLDDT-guided mutation, crossover, breeding that never repeats a sequence, NSGA-II ranking,
diverse elites and the stopping rule. Pure functions, no database."""

import random

import pytest

from designs.search import (
    ALPHABET,
    BINDER_TYPES,
    Scored,
    breed,
    crossover,
    developability,
    fitness,
    mutate,
    mutation_rate,
    nsga2_order,
    plateaued,
    random_candidate,
    select_elites,
    similarity,
    valid,
)

BOUNDS = {"linear": (8, 14), "cyclic": (8, 14), "bicyclic": (7, 12), "glycopeptide": (8, 14)}
BALANCED = "ADKGSTNQLVEYRH"  # no liability: developability 1


def scored(sequence: str, iptm: float, plddt: float = 0.8) -> Scored:
    return Scored.of(sequence, iptm, [plddt] * len(sequence))


def with_random_plddt(rng: random.Random, sequence: str) -> Scored:
    return Scored.of(sequence, rng.random(), [rng.random() for _ in sequence])


def assert_structure(sequence: str, binder_type: str, low: int, high: int):
    """The binder type's rule spelled out, independently of `valid`."""
    assert low <= len(sequence) <= high
    if binder_type == "bicyclic":
        cys = [i for i, c in enumerate(sequence) if c == "C"]
        assert len(cys) == 3
        assert cys[-1] == len(sequence) - 1
        assert all(b - a >= 2 for a, b in zip(cys, cys[1:], strict=False))
        assert all(c in ALPHABET for c in sequence if c != "C")
    elif binder_type == "glycopeptide":
        marks = [c for c in sequence if c.islower()]
        assert len(marks) == 1 and marks[0] in "nst"
        assert all(c in ALPHABET for c in sequence if c.isupper())
    else:
        assert all(c in ALPHABET for c in sequence)
    assert valid(sequence, binder_type, low, high)


def test_the_alphabet_is_the_nineteen_amino_acids_without_cysteine():
    assert len(ALPHABET) == 19 and len(set(ALPHABET)) == 19
    assert "C" not in ALPHABET


@pytest.mark.parametrize("binder_type", BINDER_TYPES)
def test_random_candidates_follow_their_binder_types_rule(binder_type):
    rng = random.Random(1)
    low, high = BOUNDS[binder_type]
    drawn = [random_candidate(rng, binder_type, low, high) for _ in range(500)]
    for sequence in drawn:
        assert_structure(sequence, binder_type, low, high)
    assert {len(s) for s in drawn} == set(range(low, high + 1))
    assert len(set(drawn)) > 490


def test_valid_rejects_what_breaks_a_rule():
    assert valid("ADEFGH", "linear", 5, 10)
    assert not valid("ADCFGH", "linear", 5, 10)  # a C
    assert not valid("ADEfGH", "cyclic", 5, 10)  # lower case
    assert not valid("ADEFGHIKLMN", "linear", 5, 10)  # too long
    assert valid("ACDCEFC", "bicyclic", 5, 10)
    assert not valid("ACCDEFC", "bicyclic", 5, 10)  # two C adjacent
    assert not valid("ACDEFCC", "bicyclic", 5, 10)  # next to the last
    assert not valid("ACDCEFG", "bicyclic", 5, 10)  # last is not C
    assert not valid("CACACAC", "bicyclic", 5, 10)  # four C
    assert valid("ADnEFG", "glycopeptide", 5, 10)
    assert not valid("ADNEFG", "glycopeptide", 5, 10)  # no marker
    assert not valid("AnsEFG", "glycopeptide", 5, 10)  # two
    assert not valid("ADqEFG", "glycopeptide", 5, 10)  # q carries no sugar
    with pytest.raises(ValueError):
        valid("ADEFGH", "stapled", 5, 10)


@pytest.mark.parametrize("binder_type", BINDER_TYPES)
def test_mutation_gives_a_valid_different_child_and_leaves_cys_and_sugar(binder_type):
    rng = random.Random(2)
    low, high = BOUNDS[binder_type]
    for _ in range(300):
        parent = with_random_plddt(rng, random_candidate(rng, binder_type, low, high))
        child = mutate(rng, parent, rng.choice([0.0, 0.1, 0.5]), binder_type, low, high)
        assert_structure(child, binder_type, low, high)
        assert child != parent.sequence
        assert [c for c in child if c.islower()] == [c for c in parent.sequence if c.islower()]
    # Without length changes the C stay where they were.
    for _ in range(100):
        parent = with_random_plddt(rng, random_candidate(rng, "bicyclic", 9, 9))
        child = mutate(rng, parent, 0.8, "bicyclic", 9, 9)
        cys = [i for i, c in enumerate(parent.sequence) if c == "C"]
        assert [i for i, c in enumerate(child) if c == "C"] == cys


def test_mutation_sometimes_changes_the_length_within_bounds():
    rng = random.Random(3)
    parent = scored("ADKGSTNQLV", 0.5)
    lengths = [len(mutate(rng, parent, 0.1, "linear", 9, 11)) for _ in range(1000)]
    assert set(lengths) == {9, 10, 11}
    assert 40 < sum(n != 10 for n in lengths) < 160  # about one child in ten
    fixed = {len(mutate(rng, parent, 0.1, "linear", 10, 10)) for _ in range(300)}
    assert fixed == {10}


def test_mutation_hits_low_plddt_positions_more_often():
    rng = random.Random(4)
    sequence = "ADKGSTNQLVEYRHADKGST"
    parent = Scored.of(sequence, 0.5, [0.2] * 10 + [0.95] * 10)
    low = high = 0
    for _ in range(2000):
        child = mutate(rng, parent, 0.2, "linear", 20, 20)
        changed = [i for i, (a, b) in enumerate(zip(sequence, child, strict=True)) if a != b]
        low += sum(i < 10 for i in changed)
        high += sum(i >= 10 for i in changed)
    assert low > 5 * high > 0


def test_equal_plddt_mutates_each_position_at_the_rate():
    rng = random.Random(5)
    parent = scored("ADKGSTNQLVEYRHADKGST", 0.5, plddt=0.7)
    changes = 0
    for _ in range(1000):
        child = mutate(rng, parent, 0.25, "linear", 20, 20)
        changes += sum(a != b for a, b in zip(parent.sequence, child, strict=True))
    assert 0.22 < changes / (1000 * 20) < 0.28


def test_a_zero_rate_still_changes_the_weakest_position_conservatively_mostly():
    rng = random.Random(6)
    plddt = [0.9] * 10
    plddt[7] = 0.3
    parent = Scored.of("ADKGSTNIQV", 0.5, plddt)
    children = [mutate(rng, parent, 0.0, "linear", 10, 10) for _ in range(500)]
    assert all(c[:7] + c[8:] == "ADKGSTNQV" and c[7] != "I" for c in children)
    # I's group is ILVM: 0.6 conservative, plus a share of the random others.
    assert sum(c[7] in "LVM" for c in children) / len(children) > 0.5


def test_crossover_joins_a_prefix_of_the_first_and_the_suffix_of_the_second():
    rng = random.Random(7)
    a, b = "ADEFGHIKLM", "NPQRSTVWYA"
    cuts = set()
    for _ in range(200):
        child = crossover(rng, a, b, "linear", 10, 10)
        (k,) = [k for k in range(1, 10) if child == a[:k] + b[k:]]
        cuts.add(k)
    assert len(cuts) > 5


@pytest.mark.parametrize("binder_type", BINDER_TYPES)
def test_crossover_always_gives_a_valid_candidate(binder_type):
    rng = random.Random(8)
    low, high = BOUNDS[binder_type]
    for _ in range(500):
        a = random_candidate(rng, binder_type, low, high)
        b = random_candidate(rng, binder_type, low, high)
        assert_structure(crossover(rng, a, b, binder_type, low, high), binder_type, low, high)


def test_a_glycopeptide_crossover_keeps_one_marker_by_its_cut():
    rng = random.Random(9)
    a, b = "AnDEFGHIKL", "ADEFGHIsKL"  # markers at 1 and 7: only cuts 1, 8 and 9 keep one
    children = {crossover(rng, a, b, "glycopeptide", 10, 10) for _ in range(200)}
    assert children == {a[:k] + b[k:] for k in (1, 8, 9)}


@pytest.mark.parametrize("binder_type", BINDER_TYPES)
def test_breeding_gives_new_distinct_valid_candidates(binder_type):
    low, high = BOUNDS[binder_type]
    for seed in range(5):
        rng = random.Random(seed)
        population = [random_candidate(rng, binder_type, low, high) for _ in range(16)]
        elites = [with_random_plddt(rng, s) for s in population[:4]]
        seen = set(population)
        children = breed(
            rng,
            elites,
            24,
            rate=0.25,
            crossover_rate=0.3,
            binder_type=binder_type,
            length_min=low,
            length_max=high,
            seen=seen,
        )
        assert len(children) == 24 == len(set(children))
        assert not seen & set(children)
        for child in children:
            assert_structure(child, binder_type, low, high)


def breed_with(seed: int, **overrides):
    rng = random.Random(seed)
    elites = [
        scored("ADKGSTNQLVEY", 0.8),
        scored("PDKGWTNQLVEH", 0.7),
        scored("ADRGSTFQLIEY", 0.6),
    ]
    arguments = dict(
        rate=0.25,
        crossover_rate=0.3,
        binder_type="linear",
        length_min=10,
        length_max=14,
        seen={s.sequence for s in elites},
    )
    arguments.update(overrides)
    return breed(rng, elites, 12, **arguments)


def test_breeding_is_reproducible_from_the_seed():
    assert breed_with(11) == breed_with(11)
    assert breed_with(11) != breed_with(12)


def test_breeding_from_one_elite_only_mutates_it():
    rng = random.Random(13)
    elite = scored("ADKGSTNQLV", 0.5)
    children = breed(
        rng,
        [elite],
        20,
        rate=0.0,
        crossover_rate=1.0,
        binder_type="linear",
        length_min=10,
        length_max=10,
        seen={elite.sequence},
    )
    # Rate 0: one changed position each, so no child is anything but a point mutant.
    assert all(sum(a != b for a, b in zip(elite.sequence, c, strict=True)) == 1 for c in children)


def test_breeding_falls_back_to_random_candidates_and_says_when_none_is_left():
    rng = random.Random(14)
    elite = scored("A", 0.5)
    seen = set(ALPHABET) - {"W"}
    arguments = dict(rate=0.5, crossover_rate=0.0, binder_type="linear", length_min=1, length_max=1)
    assert breed(rng, [elite], 1, seen=seen, **arguments) == ["W"]
    with pytest.raises(ValueError):
        breed(rng, [elite], 2, seen=seen, **arguments)


def test_developability_penalises_each_liability():
    assert developability(BALANCED) == 1.0
    liable = {
        "hydrophobic": "AFILMVWYAFKL",
        "charged": "DEKRSKDTERNE",
        "proline and glycine": "PGSPGTAPNGQE",
        "a run of four": "ADKGGGGSTNQLVEYR",
        "a repeated triple": "ADKSTADKNQLVEYR",
    }
    for sequence in liable.values():
        assert developability(sequence) == pytest.approx(0.92)
    assert developability("LLLLVLLPGPG") == pytest.approx(0.76)  # three at once
    assert developability("DDDDKPGKPGEG") == pytest.approx(0.75)  # four: capped
    assert developability("ddddkpgkpgeg") == developability("DDDDKPGKPGEG")


def test_a_hydrophobic_peptide_scores_lower_than_a_balanced_one_but_not_below_the_floor():
    rng = random.Random(15)
    for _ in range(200):
        greasy = "".join(rng.choice("AFILMVWY") for _ in range(12))
        assert 0.75 <= developability(greasy) < developability(BALANCED)


def test_a_score_weighs_iptm_plddt_and_developability():
    assert fitness(1.0, 0.0, 0.0) == pytest.approx(0.6)
    assert fitness(0.0, 1.0, 0.0) == pytest.approx(0.3)
    assert fitness(0.0, 0.0, 1.0) == pytest.approx(0.1)
    s = Scored.of("AFILMVWYAFKL", 0.5, [0.4] * 6 + [0.8] * 6)
    assert s.binder_plddt == pytest.approx(0.6)
    assert s.residue_plddt == (0.4,) * 6 + (0.8,) * 6
    assert s.developability == pytest.approx(0.92)
    assert s.fitness == pytest.approx(0.6 * 0.5 + 0.3 * 0.6 + 0.1 * 0.92)
    with pytest.raises(ValueError):
        Scored.of("ADKG", 0.5, [0.5] * 3)


def test_nsga2_puts_the_dominating_candidate_first_and_the_dominated_last():
    best = scored("ADKGSTNQLVEYRH", 0.9, plddt=0.9)
    strong_binder = scored("ADKGSTNQLVEYRW", 0.8, plddt=0.3)
    confident = scored("ADKGSTNQLVEYRF", 0.3, plddt=0.85)
    worst = scored("AFILMVWYAFKL", 0.1, plddt=0.2)  # lower everywhere, developability too
    order = nsga2_order([worst, confident, best, strong_binder])
    assert order[0] == best
    assert order[-1] == worst
    assert set(order[1:3]) == {strong_binder, confident}


def test_nsga2_ranks_the_ends_of_a_front_before_its_crowded_middle():
    ends = [scored("ADKGSTNQLVEYRW", 0.8, plddt=0.1), scored("ADKGSTNQLVEYRF", 0.1, plddt=0.9)]
    middle = scored("ADKGSTNQLVEYRH", 0.75, plddt=0.5)  # the highest fitness of the three
    assert middle.fitness > max(e.fitness for e in ends)
    order = nsga2_order([middle, *ends])
    assert order[-1] == middle
    # Equal objectives: the sequence decides.
    twins = [scored("ADKGSTNQLVEYRW", 0.5), scored("ADKGSTNQLVEYRF", 0.5)]
    assert [s.sequence for s in nsga2_order(twins)] == ["ADKGSTNQLVEYRF", "ADKGSTNQLVEYRW"]


def test_similarity_is_identity_over_the_longer_sequence():
    assert similarity("ADKG", "ADKG") == 1.0
    assert similarity("ADnG", "ADNG") == 1.0
    assert similarity("ADKG", "ADKW") == 0.75
    assert similarity("ADKG", "ADKGST") == pytest.approx(4 / 6)
    assert similarity("ADKG", "WWWW") == 0.0


def test_elites_skip_a_near_duplicate_for_a_different_candidate():
    best = scored("ADKGSTNQLVEYRH", 0.9)
    near_copy = scored("ADKGSTNQLVEYRW", 0.8)  # 13 of 14 the same: 0.93
    other = scored("HRYEVLQNTSGKDA", 0.7)
    assert similarity(best.sequence, near_copy.sequence) >= 0.92
    assert nsga2_order([other, near_copy, best]) == [best, near_copy, other]
    assert select_elites([other, near_copy, best], 2) == [best, other]
    # Too few differ: the near copy makes up the number.
    assert select_elites([other, near_copy, best], 3) == [best, other, near_copy]
    assert select_elites([other, near_copy, best], 0) == []


def test_the_mutation_rate_rises_with_stagnation_up_to_a_cap():
    assert mutation_rate(0.25, 0) == pytest.approx(0.25)
    assert mutation_rate(0.25, 2) == pytest.approx(0.25 * 1.7)
    assert mutation_rate(0.25, 20) == 0.85
    assert mutation_rate(0.9, 0) == 0.85


def test_the_search_plateaus_when_the_best_stops_rising():
    assert not plateaued([0.5, 0.5, 0.5, 0.5, 0.5])  # not yet a window
    assert plateaued([0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert plateaued([0.1, 0.5, 0.5002, 0.5004, 0.5006, 0.5008, 0.5009])
    assert not plateaued([0.5, 0.5, 0.5, 0.5, 0.5, 0.502])
    assert not plateaued([0.5] * 6, window=6)
