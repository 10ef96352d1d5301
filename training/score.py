"""The `score` job's program:

    python -m training.score --model model.pth --data FILE --kind K --out DIR [--column C]

Loads the trained model once, predicts every sequence of the input in batches and writes
`predictions.csv`: the input's rows in order, with `name`, `sequence`, `prediction` and, for a
classifier, one `p_<class>` column per class.
"""

import argparse
import csv
import sys
from pathlib import Path

import torch

from jobs import markers
from training import seqdata
from training.seqmodel import load

BATCH = 256


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--kind", required=True)
    parser.add_argument("--column", default="sequence")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, vocabulary, saved = load(args.model, device)
    task, classes = saved["task"], saved["classes"]
    print(f"model loaded: {task}" + (f", classes {', '.join(classes)}" if classes else ""))
    with open(args.data, "rb") as raw:
        rows = seqdata.read_sequences(seqdata.text_stream(raw), args.kind, args.column)
    print(f"{len(rows)} sequences to score on {device}", flush=True)
    with open(args.out / "predictions.csv", "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "sequence", "prediction"] + [f"p_{c}" for c in classes])
        with torch.no_grad():
            for start in range(0, len(rows), BATCH):
                chunk = rows[start : start + BATCH]
                output = model(vocabulary.encode([s for _, s in chunk]).to(device)).cpu()
                if task == "classification":
                    probabilities = torch.softmax(output, 1)
                    for (name, sequence), p in zip(chunk, probabilities, strict=True):
                        writer.writerow(
                            [name, sequence, classes[int(p.argmax())]]
                            + [f"{float(x):.6f}" for x in p]
                        )
                else:
                    mean, std = saved["label_scale"]
                    for (name, sequence), value in zip(chunk, output.squeeze(1), strict=True):
                        writer.writerow([name, sequence, f"{float(value) * std + mean:.6f}"])
                markers.progress(100 * min(len(rows), start + BATCH) / len(rows), "scoring")
    print(f"wrote predictions for {len(rows)} sequences", flush=True)


if __name__ == "__main__":
    try:
        main()
    except seqdata.DatasetError as exc:
        print(f"dataset: {exc}", file=sys.stderr)
        sys.exit(2)
