"""The format checks on their own, fed in pieces of every size as the upload handler feeds them."""

import pytest

from portal.uploads.formats import FormatError, check_bytes


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
        (
            "x.pdb",
            b"HEADER    TEST\nATOM      1  N   MET A   1      11.104   6.134  -6.504\n",
            "pdb",
        ),
        ("x.cif", b"data_test\nloop_\n_atom_site.group_PDB\nATOM\n", "mmcif"),
        (
            "x.sdf",
            b"mol\n  RDKit\n\n  1  0  0  0  0  0  0  0  0  0999 V2000\nM  END\n$$$$\n",
            "sdf",
        ),
        ("x.mol2", b"@<TRIPOS>MOLECULE\nm\n@<TRIPOS>ATOM\n1 C 0 0 0 C\n", "mol2"),
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
        ("t.sdf", b"not a molecule\n", "'M  END'"),
        ("t.mol2", b"@<TRIPOS>MOLECULE\nx\n", "no @<TRIPOS>ATOM section"),
        ("t.bin", b"\x89PNG\r\n", "Cannot tell what kind of file"),
    ],
)
def test_other_bad_files_are_refused_with_a_reason(name, data, message):
    assert message in refusal(name, data)
