"""The format checks on their own, fed in pieces of every size as the upload handler feeds them."""

import pytest

from portal.uploads.formats import FormatError, check_bytes

# The smallest real molecules: methane's carbon, in V2000 and V3000 molfiles and in MOL2.
METHANE_SDF = (
    b"methane\n  RDKit          3D\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\n"
    b"    0.0000    0.0000    0.0000 C   0  0  0  0  0  0  0  0  0  0  0  0\nM  END\n$$$$\n"
)
METHANE_V3000 = (
    b"methane\n  RDKit          3D\n\n  0  0  0     0  0            999 V3000\n"
    b"M  V30 BEGIN CTAB\nM  V30 COUNTS 1 0 0 0 0\nM  V30 BEGIN ATOM\n"
    b"M  V30 1 C 0 0 0 0\nM  V30 END ATOM\nM  V30 END CTAB\nM  END\n$$$$\n"
)
EMPTY_SDF = b"empty\n  RDKit\n\n  0  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n"
METHANE_MOL2 = (
    b"@<TRIPOS>MOLECULE\nmethane\n 1 0 0\nSMALL\nNO_CHARGES\n\n"
    b"@<TRIPOS>ATOM\n      1 C1   0.0 0.0 0.0 C.3     1  LIG   0.0\n"
)


def check(name, data):
    kinds = {check_bytes(name, data, piece_size=size) for size in (1, 7, 1 << 20)}
    assert len(kinds) == 1
    return kinds.pop()


def refusal(name, data):
    messages = set()
    for size in (1, 7, 1 << 20):
        with pytest.raises(FormatError) as error:
            check_bytes(name, data, piece_size=size)
        messages.add(str(error.value))
    assert len(messages) == 1, messages
    return messages.pop()


@pytest.mark.parametrize(
    "name, data, kind",
    [
        ("a.fasta", b">a\nACDE\nFGH\n>b desc\nKLM\n", "fasta"),
        ("a.fa", b">a\r\nacgtn\r\n>b\r\nACGU\r\n", "fasta"),
        ("a.faa", b">a\nMK*", "fasta"),
        ("msa.a3m", b">query\nMKV-LA\n>hit\nMKvaL-A\n", "a3m"),
        ("t.csv", b"sequence,label\nMKV,1\nMKL,0\n", "csv"),
        ("t.tsv", b"sequence\tlabel\nMKV\t1\n", "tsv"),
        ("in.yaml", b"version: 1\nsequences:\n  - protein: {id: A, sequence: MKV}\n", "yaml"),
        ("af3.json", b'{"dialect": "alphafold3", "sequences": [{"protein": {}}]}', "json"),
        (
            "x.pdb",
            b"HEADER    TEST\nATOM      1  N   MET A   1      11.104   6.134  -6.504\n",
            "pdb",
        ),
        ("x.cif", b"data_test\nloop_\n_atom_site.group_PDB\nATOM\n", "mmcif"),
        ("x.sdf", METHANE_SDF * 3, "sdf"),
        ("x.sdf", METHANE_V3000, "sdf"),
        ("x.mol2", METHANE_MOL2 * 2, "mol2"),
        ("x.smi", b"# ligands\nCCO ethanol\n\nc1ccccc1O phenol\nC[C@H](N)C(=O)O\n", "smi"),
        ("x.mol", METHANE_SDF, "sdf"),
        ("unnamed", b">a\nMKV\n", "fasta"),
        ("unnamed", b"data_x\n_atom_site.id 1\n", "mmcif"),
    ],
)
def test_good_files_pass_and_their_kind_is_told(name, data, kind):
    assert check(name, data) == kind


@pytest.mark.parametrize(
    "data, message",
    [
        (b">a\nAC1DE\n", "Line 2: '1' is not a residue letter."),
        (b"ACDE\n>a\nAC\n", "Line 1: sequence before the first header"),
        (b">a\n>b\nAC\n", "Line 1: the record 'a' has no sequence."),
        (b">a\n\n\n>b\nAC\n", "Line 1: the record 'a' has no sequence."),
        (b">a\nAC\n>b\n", "Line 3: the record 'b' has no sequence."),
        (b">a\nAC\n>  \nAC\n", "Line 3: a header line needs a name after '>'."),
        (b">a\nAC>DE\n", "Line 2: '>' may only start a header line"),
        (b"\n\n", "No FASTA records"),
        (b">a\nAC\x00DE\n", "binary file"),
        (b">a \xe9\nACDE\n", "not valid UTF-8"),
    ],
)
def test_a_bad_fasta_is_refused_with_the_line_at_fault(data, message):
    assert message in refusal("x.fasta", data)


@pytest.mark.parametrize(
    "data, message",
    [
        (b'{"a": 1,\n "b": }', "Line 2, column 7: Expecting value."),
        (b"42", "The JSON holds no object or list."),
        (b"[" * 50_000 + b"]" * 50_000, "This JSON nests too deeply to read."),
        (b'{"a": "\xe9"}', "not valid UTF-8"),
    ],
)
def test_a_bad_json_is_refused_saying_where(data, message):
    assert message in refusal("x.json", data)


# boltz's own examples/ligand.fasta, as boltz 2.2.1 ships it (a SMILES record), and one with
# a CCD record and an MSA path.
BOLTZ_LIGAND_FASTA = (
    b">A|protein|./examples/msa/seq1.a3m\n"
    b"MVTPEGNVSLVDESLLVGVTDEDRAVRSAHQFYERLIGLWAPAVMEAAHELGVFAALAEAPADSGELARRLDCDARAMRVLLDALYAYDVI\n"
    b">B|protein|./examples/msa/seq1.a3m\n"
    b"MVTPEGNVSLVDESLLVGVTDEDRAVRSAHQFYERLIGLWAPAVMEAAHELGVFAALAEAPADSGELARRLDCDARAMRVLLDALYAYDVI\n"
    b">C|ccd\nSAH\n"
    b">D|ccd\nSAH\n"
    b">E|smiles\nN[C@@H](Cc1ccc(O)cc1)C(=O)O\n"
    b">F|smiles\nN[C@@H](Cc1ccc(O)cc1)C(=O)O\n"
)


@pytest.mark.parametrize("piece_size", [1 << 20, 7])
def test_boltz_fasta_with_smiles_and_ccd_records_is_a_fasta(piece_size):
    """A ligand's record in boltz's FASTA (`>E|smiles`, `>C|ccd`) holds no residue letters;
    every other record is still checked, and an A3M takes no ligand."""
    assert check_bytes("ligand.fasta", BOLTZ_LIGAND_FASTA, piece_size=piece_size) == "fasta"
    after = BOLTZ_LIGAND_FASTA + b">G|protein\nMK[V\n"
    with pytest.raises(FormatError, match="Line 14: '\\[' is not a residue letter"):
        check_bytes("ligand.fasta", after, piece_size=piece_size)
    with pytest.raises(FormatError, match="the record 'E|smiles' has no sequence"):
        check_bytes("x.fasta", b">A|protein\nMK\n>E|smiles\n\n>B|protein\nMK\n")
    with pytest.raises(FormatError, match="'\\(' is not a residue letter"):
        check_bytes("x.a3m", b">q\nMK\n>E|smiles\nCC(=O)O\n")


def test_a_long_unwrapped_sequence_is_checked_across_pieces():
    genome = b">chr\n" + b"ACGT" * 400_000 + b"N\n>plasmid\n" + b"ACGT" * 10 + b"\n"
    assert check_bytes("g.fasta", genome, piece_size=1 << 16) == "fasta"
    bad = b">chr\n" + b"ACGT" * 400_000 + b"1\n"
    with pytest.raises(FormatError, match="Line 2: '1'"):
        check_bytes("g.fasta", bad, piece_size=1 << 16)


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("t.csv", b"MKTAYIAKQR,0.5\n", "The first row looks like data"),
        ("t.csv", b"sequence,sequence\nA,B\n", "names a column twice: sequence"),
        ("t.csv", b"sequence,\nA,B\n", "column 2 has no name"),
        ("t.csv", b"sequence\tlabel\nA\t1\n", "looks tab-separated"),
        ("t.csv", b"a,b\n1,2\n3\n", "Row 3 has 1 fields but the header names 2"),
        ("t.yaml", b"just a string\n", "holds no mapping or list"),
        ("t.cif", b"data_x\nloop_\n_entity.id 1\n", "no _atom_site table"),
        ("t.sdf", b"not a molecule\n", "ends before its counts line"),
        ("t.sdf", METHANE_SDF.replace(b"M  END\n", b""), "does not end with 'M  END'"),
        ("t.sdf", METHANE_SDF + EMPTY_SDF, "molecule 2 ('empty') has no atoms"),
        ("t.sdf", EMPTY_SDF.replace(b"  0  0", b"  3  0"), "declares 3 atoms and 0 bonds"),
        ("t.sdf", METHANE_V3000.replace(b"COUNTS 1", b"COUNTS 0"), "has no atoms"),
        ("t.mol2", b"@<TRIPOS>MOLECULE\nx\n 1 0\n", "no @<TRIPOS>ATOM section"),
        ("t.mol2", METHANE_MOL2.replace(b" 1 0 0", b" 0 0 0"), "('methane') has no atoms"),
        ("t.mol2", METHANE_MOL2.replace(b" 1 0 0", b" 2 0 0"), "declares 2 atoms but lists 1"),
        ("t.mol2", b"@<TRIPOS>MOLECULE\nx\n\n", "has no atom count"),
        ("t.smi", b"# nothing\n\n", "holds no SMILES"),
        (
            "t.smi",
            b"CCO ethanol\nC C O spaced\nnot,a,smiles x\n",
            "Line 3: 'not,a,smiles' is not a",
        ),
        ("t.bin", b"\x89PNG\r\n", "Cannot tell what kind of file"),
    ],
)
def test_other_bad_files_are_refused_with_a_reason(name, data, message):
    assert message in refusal(name, data)
