"""The `train` job's program:

    python -m training.train --data FILE --kind csv|tsv|fasta --out DIR --params JSON

Fits training/seqmodel.py to the labeled sequences, reporting per epoch (and every
STEPS_REPORTED batches of a long epoch) the losses and validation figures as metric points,
progress, and log lines with the elapsed time. Writes `model.pth` (the weights and all that is
needed to use them), `metrics.json` (every epoch's figures and the best), `provenance.json`
(torch, the device, the seed, the model's shape) and `train.log`.
Deterministic for a given seed on the CPU; on the job's GPU when it has one.
"""

import argparse
import json
import math
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
from torch import nn

from jobs import markers
from training import seqdata
from training.seqmodel import SequenceModel, Vocabulary

STEPS_REPORTED = 50


class Log:
    """Lines to standard output (the portal's log) and to train.log."""

    def __init__(self, path: Path):
        self.file = open(path, "w", encoding="utf-8")  # noqa: SIM115
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        elapsed = timedelta(seconds=int(time.monotonic() - self.started))
        line = f"[{elapsed}] {line}"
        print(line, flush=True)
        self.file.write(line + "\n")
        self.file.flush()


def batches(count: int, size: int, generator: torch.Generator | None):
    order = (
        torch.randperm(count, generator=generator) if generator is not None else torch.arange(count)
    )
    for start in range(0, count, size):
        yield order[start : start + size]


def evaluate(model, tokens, targets, task, loss_fn, batch_size, device, scale):
    model.eval()
    total, correct, squared, n = 0.0, 0, 0.0, len(targets)
    with torch.no_grad():
        for index in batches(n, batch_size, None):
            output = model(tokens[index].to(device))
            target = targets[index].to(device)
            if task == "classification":
                total += loss_fn(output, target).item() * len(index)
                correct += (output.argmax(1) == target).sum().item()
            else:
                prediction = output.squeeze(1)
                total += loss_fn(prediction, target).item() * len(index)
                squared += (((prediction - target) * scale[1]) ** 2).sum().item()
    figures = {"val_loss": total / n}
    if task == "classification":
        figures["val_accuracy"] = correct / n
    else:
        figures["val_rmse"] = math.sqrt(squared / n)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--kind", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--params", required=True)
    args = parser.parse_args()
    params = json.loads(args.params)
    args.out.mkdir(parents=True, exist_ok=True)
    log = Log(args.out / "train.log")

    seed, task = params["seed"], params["task"]
    random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    with open(args.data, "rb") as raw:
        rows = seqdata.read_labeled(
            seqdata.text_stream(raw), args.kind, params["sequence_column"], params["label_column"]
        )
    sequences = [sequence for sequence, _, _ in rows]
    labels = [label for _, label, _ in rows]
    vocabulary = Vocabulary("".join(sequences))
    tokens = vocabulary.encode(sequences)
    if task == "classification":
        classes = sorted(set(labels))
        targets = torch.tensor([classes.index(label) for label in labels])
        outputs, loss_fn, scale = len(classes), nn.CrossEntropyLoss(), (0.0, 1.0)
    else:
        classes = []
        values = torch.tensor([float(label) for label in labels])
        outputs, loss_fn = 1, nn.MSELoss()

    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(rows) * params["val_fraction"]))
    val_index, train_index = order[:n_val], order[n_val:]
    if task == "regression":
        # Targets standardised on the training part: the loss is scale-free, RMSE is reported
        # in the labels' own units.
        mean, std = values[train_index].mean().item(), values[train_index].std().item() or 1.0
        scale = (mean, std)
        targets = (values - mean) / std
    log(
        f"{len(rows)} sequences ({len(train_index)} to train, {n_val} to validate), "
        f"{len(vocabulary) - 2} residue letters, task {task}"
        + (f", classes {', '.join(classes)}" if classes else "")
        + f"; on {device}"
    )

    model = SequenceModel(len(vocabulary), outputs).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=params["lr"])
    generator = torch.Generator().manual_seed(seed)
    epochs, batch_size = params["epochs"], params["batch_size"]
    steps_per_epoch = math.ceil(len(train_index) / batch_size)
    history, step = [], 0
    train_tokens, train_targets = tokens[train_index], targets[train_index]
    val_tokens, val_targets = tokens[val_index], targets[val_index]
    for epoch in range(1, epochs + 1):
        model.train()
        total = 0.0
        for number, index in enumerate(batches(len(train_index), batch_size, generator), start=1):
            optimiser.zero_grad()
            output = model(train_tokens[index].to(device))
            target = train_targets[index].to(device)
            loss = loss_fn(output if task == "classification" else output.squeeze(1), target)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(index)
            step += 1
            if steps_per_epoch > STEPS_REPORTED and number % STEPS_REPORTED == 0:
                markers.metric(step, "batch_loss", loss.item())
                markers.progress(
                    100 * ((epoch - 1) + number / steps_per_epoch) / epochs,
                    f"epoch {epoch}/{epochs}, batch {number}/{steps_per_epoch}",
                )
        figures = {"epoch": epoch, "train_loss": total / len(train_index)}
        figures.update(
            evaluate(model, val_tokens, val_targets, task, loss_fn, batch_size, device, scale)
        )
        history.append(figures)
        for name, value in figures.items():
            if name != "epoch":
                markers.metric(epoch, name, value)
        markers.progress(100 * epoch / epochs, f"epoch {epoch}/{epochs}")
        log(
            f"epoch {epoch}/{epochs}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in figures.items() if k != "epoch")
        )

    best = min(history, key=lambda f: f["val_loss"])
    torch.save(
        {
            "format": "science-portal sequence model 1",
            "task": task,
            "classes": classes,
            "label_scale": scale,
            "vocabulary": vocabulary.characters,
            "model_config": model.config,
            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
            "params": params,
            "final": history[-1],
            "best": best,
        },
        args.out / "model.pth",
    )
    (args.out / "metrics.json").write_text(
        json.dumps({"task": task, "epochs": history, "final": history[-1], "best": best}, indent=2)
    )
    # What ran (the archive's manifest shows it as the job's engine).
    provenance = {
        "engine": "training.seqmodel",
        "torch_version": torch.__version__,
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "seed": seed,
        "model_config": model.config,
    }
    (args.out / "provenance.json").write_text(json.dumps(provenance, indent=2))
    log(f"best epoch {best['epoch']} (val_loss {best['val_loss']:.4f}); saved model.pth")


if __name__ == "__main__":
    try:
        main()
    except seqdata.DatasetError as exc:
        print(f"dataset: {exc}", file=sys.stderr)
        sys.exit(2)
