"""The compact sequence model `train` fits and `score` applies.

Residues are embedded and read by 1-D convolutions of three widths (motifs of about 3, 5 and 9
residues); max- and mean-pooling over the sequence feed a small head that gives class scores or
one number. It learns motif and composition rules from a few thousand sequences in minutes on
a CPU, and runs on the GPU when the job has one.
"""

import torch
from torch import nn

PAD, UNKNOWN = 0, 1
MAX_LENGTH = 2000


class Vocabulary:
    """Characters ↔ ids; 0 pads, 1 stands for a character the training data never had."""

    def __init__(self, characters):
        self.characters = sorted(set(characters))
        self.ids = {c: i + 2 for i, c in enumerate(self.characters)}

    def __len__(self) -> int:
        return len(self.characters) + 2

    def encode(self, sequences: list[str], max_length: int = MAX_LENGTH) -> torch.Tensor:
        length = max(1, min(max_length, max((len(s) for s in sequences), default=1)))
        batch = torch.zeros(len(sequences), length, dtype=torch.long)
        for row, sequence in enumerate(sequences):
            ids = [self.ids.get(c, UNKNOWN) for c in sequence[:length]]
            if ids:
                batch[row, : len(ids)] = torch.tensor(ids)
        return batch


class SequenceModel(nn.Module):
    def __init__(self, vocabulary_size: int, outputs: int, embedding: int = 32, channels: int = 64):
        super().__init__()
        self.config = {
            "vocabulary_size": vocabulary_size,
            "outputs": outputs,
            "embedding": embedding,
            "channels": channels,
        }
        self.embed = nn.Embedding(vocabulary_size, embedding, padding_idx=PAD)
        self.convs = nn.ModuleList(
            nn.Conv1d(embedding, channels, width, padding=width // 2) for width in (3, 5, 9)
        )
        self.head = nn.Sequential(
            nn.Dropout(0.1),
            nn.Linear(2 * 3 * channels, 64),
            nn.ReLU(),
            nn.Linear(64, outputs),
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != PAD).unsqueeze(1)  # [batch, 1, length]
        x = self.embed(tokens).transpose(1, 2)  # [batch, embedding, length]
        features = torch.cat(
            [torch.relu(conv(x))[..., : tokens.shape[1]] for conv in self.convs], 1
        )
        highest = features.masked_fill(~mask, float("-inf")).amax(2)
        mean = (features * mask).sum(2) / mask.sum(2).clamp(min=1)
        return self.head(torch.cat([highest, mean], 1))


def load(path, device="cpu") -> tuple[SequenceModel, Vocabulary, dict]:
    """A model saved by `train`: the network, its vocabulary and what it was trained for."""
    saved = torch.load(path, map_location=device, weights_only=False)
    model = SequenceModel(**saved["model_config"])
    model.load_state_dict(saved["state_dict"])
    model.to(device).eval()
    vocabulary = Vocabulary(saved["vocabulary"])
    return model, vocabulary, saved
