"""Datasets the training tests build: rules a sequence model can learn."""

import csv
import random
from pathlib import Path

RESIDUES = "ACDEFGHIKLMNPQRSTVWY"
NO_R = RESIDUES.replace("R", "")  # so the motif RGD never appears by chance


def motif_sequence(rng: random.Random, binder: bool, length: int) -> str:
    residues = [rng.choice(NO_R) for _ in range(length)]
    if binder:
        at = rng.randrange(0, length - 3)
        residues[at : at + 3] = "RGD"
    return "".join(residues)


def write_motif_csv(path: Path, rows: int = 3000, seed: int = 5) -> Path:
    """label 'binder' when the sequence holds the motif RGD, else 'non-binder'."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["sequence", "label"])
        for n in range(rows):
            binder = n % 2 == 0
            writer.writerow(
                [
                    motif_sequence(rng, binder, rng.randint(30, 60)),
                    "binder" if binder else "non-binder",
                ]
            )
    return path


def write_motif_fasta(path: Path, rows: int = 200, seed: int = 9) -> list[str]:
    """New sequences to score; returns the truth, in order."""
    rng = random.Random(seed)
    truth = []
    with open(path, "w") as f:
        for n in range(rows):
            binder = rng.random() < 0.5
            truth.append("binder" if binder else "non-binder")
            f.write(f">new{n}\n{motif_sequence(rng, binder, 45)}\n")
    return truth


def write_activity_tsv(path: Path, rows: int = 3000, seed: int = 6) -> tuple[Path, list[float]]:
    """A numeric label: 2 per W and 1 per C in a 40-residue sequence, plus a little noise."""
    rng = random.Random(seed)
    labels = []
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(["peptide", "activity"])
        for _ in range(rows):
            sequence = "".join(rng.choice(RESIDUES) for _ in range(40))
            label = round(2 * sequence.count("W") + sequence.count("C") + rng.gauss(0, 0.2), 3)
            labels.append(label)
            writer.writerow([sequence, label])
    return path, labels
