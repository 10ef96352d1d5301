"""Whether a candidate's predicted structure meets the campaign's distance constraints: each
`contact` (its two tokens within `max_distance`) and each residue of a `pocket` (the binder
within `max_distance` of it) is one check, met when the closest heavy atoms are that near; the
candidate scores the fraction met. Bonds are not checked: boltz builds them into the molecule.
Tokens are boltz's: [chain, residue number from 1] for a polymer, [chain, atom name] for a
ligand. Distances are read from the structure boltz wrote (its mmCIF), with gemmi.
"""

POCKET_DEFAULT = 6.0  # Å, boltz's default max_distance for a pocket
CONTACT_DEFAULT = 6.0  # Å, boltz's default max_distance for a contact


def checks(constraints: list[dict]) -> list[tuple[list, list | None, float]]:
    """The distance checks of a campaign's constraints: (token, token or None for the whole
    binder chain named in the first, max distance)."""
    found = []
    for item in constraints or []:
        if "contact" in item:
            contact = item["contact"]
            found.append(
                (
                    contact["token1"],
                    contact["token2"],
                    float(contact.get("max_distance", CONTACT_DEFAULT)),
                )
            )
        elif "pocket" in item:
            pocket = item["pocket"]
            for token in pocket.get("contacts") or []:
                found.append(
                    (
                        [pocket["binder"]],
                        token,
                        float(pocket.get("max_distance", POCKET_DEFAULT)),
                    )
                )
    return found


def _atoms(model, token: list) -> list:
    """The heavy atoms' positions of a token: a chain's whole (one item), a residue by its
    number, or a ligand's atom by its name."""
    import gemmi

    chain = model.find_chain(str(token[0]))
    if chain is None:
        raise KeyError(f"no chain {token[0]} in the prediction")
    if len(token) == 1:
        residues = list(chain)
    elif isinstance(token[1], int):
        residues = [r for r in chain if r.label_seq == token[1] or r.seqid.num == token[1]]
    else:
        return [
            atom.pos
            for residue in chain
            for atom in residue
            if atom.name == token[1] and atom.element != gemmi.Element("H")
        ]
    return [
        atom.pos for residue in residues for atom in residue if atom.element != gemmi.Element("H")
    ]


def fraction_met(constraints: list[dict], mmcif: str) -> float:
    """The fraction of the constraints' checks the structure meets (1.0 without any)."""
    import gemmi

    found = checks(constraints)
    if not found:
        return 1.0
    model = gemmi.make_structure_from_block(gemmi.cif.read_string(mmcif).sole_block())[0]
    met = 0
    for first, second, limit in found:
        a, b = _atoms(model, first), _atoms(model, second)
        if a and b and min(p.dist(q) for p in a for q in b) <= limit:
            met += 1
    return met / len(found)
