"""The GPU memory a Boltz-2 prediction needs, by its size: what placement reads at submission.

Its own module, so that the web process, which estimates each prediction's memory, does not
import the engine (predictions/engine.py), which only nodes run.
"""

MAX_MSA_SEQS = 8192  # boltz's --max_msa_seqs: rows past it are not read


def memory_needed(tokens: int, msa_rows: int = 0) -> int:
    """GPU memory (bytes) a prediction of `tokens` tokens (a residue, or a ligand's atom, each)
    with an MSA of `msa_rows` rows needs; placement sends a job only to a GPU this large:

        4.5 GiB + tokens² × 13 KiB + tokens³ × 1 B + tokens × rows × (160 B + 1 KiB)

    The first three terms are fitted above what bench/gpu.py measured on an H200 (2026-11-30):
    the device's memory in use at the peak of a single-sequence prediction by a Boltz-2 of the
    released widths, 20 to 2,000 tokens, boltz's GPU kernels off (without them it takes more
    memory; the kernels are optional): 4.2 GiB at 20 tokens, 15.8 at 1,000, 34.2 at 1,500, 55.9
    at 2,000, each 4 to 12 % under the formula (see bench/README.md). Users report about 1,300
    tokens on 24 GB (boltz issue #236), which agrees. The MSA term is read off the tensors'
    shapes, not measured: the featurised MSA (a one-hot of 33 classes with its deletion
    features, about 160 bytes a cell in float32) and the MSA module's representation (64
    channels, its transitions four times wider, about 1 KiB a cell), both rows × tokens, as
    `boltz predict` does not subsample the MSA (predictions/engine.py: SUBSAMPLE_MSA). It
    matters (#611 reports more than 5 GB from MSA depth alone): 8,192 rows on 1,000 tokens add
    9.7 GB."""
    return 9 * 2**29 + tokens**2 * 13 * 2**10 + tokens**3 + tokens * msa_rows * (160 + 2**10)
