"""A candidate's constraints met: distances read from the mmCIF boltz writes, and what the
search makes of them."""

import gemmi

from designs.constraints import fraction_met
from designs.search import Scored, nsga2_order


def mmcif(atoms: dict) -> str:
    """A structure of chains with one residue per entry: {(chain, number, name): (x, y, z)}."""
    structure = gemmi.Structure()
    model = gemmi.Model("1")
    for chain_id in sorted({chain for chain, _, _ in atoms}):
        chain = gemmi.Chain(chain_id)
        for (c, number, name), xyz in sorted(atoms.items()):
            if c != chain_id:
                continue
            residue = gemmi.Residue()
            residue.name, residue.seqid = name, gemmi.SeqId(number, " ")
            for atom_name, element, offset in (("N", "N", 0.0), ("CA", "C", 1.5)):
                atom = gemmi.Atom()
                atom.name, atom.element = atom_name, gemmi.Element(element)
                atom.pos = gemmi.Position(xyz[0] + offset, xyz[1], xyz[2])
                residue.add_atom(atom)
            chain.add_residue(residue)
        model.add_chain(chain)
    structure.add_model(model)
    structure.setup_entities()
    return structure.make_mmcif_document().as_string()


STRUCTURE = mmcif(
    {
        ("A", 1, "MET"): (0.0, 0.0, 0.0),
        ("A", 2, "LYS"): (20.0, 0.0, 0.0),
        ("B", 1, "GLY"): (0.0, 4.0, 0.0),  # 4 Å from A1
        ("B", 2, "ALA"): (0.0, 9.0, 0.0),  # 9 Å from A1
    }
)


def test_each_contact_and_pocket_residue_is_one_check_met_within_its_distance():
    near = {"contact": {"token1": ["A", 1], "token2": ["B", 1], "max_distance": 5}}
    far = {"contact": {"token1": ["A", 1], "token2": ["B", 2], "max_distance": 5}}
    assert fraction_met([near], STRUCTURE) == 1.0
    assert fraction_met([far], STRUCTURE) == 0.0
    assert fraction_met([near, far], STRUCTURE) == 0.5
    # The binder B is 4 Å from A1 and about 19 Å from A2 (nearest atoms): one of two met.
    pocket = {"pocket": {"binder": "B", "contacts": [["A", 1], ["A", 2]], "max_distance": 6}}
    assert fraction_met([pocket], STRUCTURE) == 0.5
    # Bonds are part of the molecule, not a distance to check: none to meet.
    bond = {"bond": {"atom1": ["A", 1, "N"], "atom2": ["B", 1, "N"]}}
    assert fraction_met([bond], STRUCTURE) == 1.0 and fraction_met([], STRUCTURE) == 1.0


def test_a_candidate_that_breaks_the_constraints_ranks_below_one_that_keeps_them():
    keeps = Scored.of("ACDEFG", 0.7, [0.8] * 6, constraints=1.0)
    breaks = Scored.of("ACDEFH", 0.7, [0.8] * 6, constraints=0.5)
    assert breaks.fitness == keeps.fitness * 0.5
    assert nsga2_order([breaks, keeps])[0] is keeps
    # Without constraints every candidate meets all of them: the ranking is as before.
    assert Scored.of("ACDEFG", 0.7, [0.8] * 6).fitness == keeps.fitness
