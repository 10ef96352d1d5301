"""Reading a job's result files (artifacts) for pages and the API."""

import base64
import io
import json

from django.core.files.storage import default_storage

# The PAE's scale: boltz's PAE bins end at 32 Å.
PAE_MAX = 32.0


def record_name(params: dict, job_id: int) -> str:
    """The name a prediction's files go by (boltz's record id): `<record>_model_0.cif`,
    `confidence_<record>_model_0.json`, `affinity_<record>.json`, … The job's `record`
    parameter where it gave one, else `job-<id>`."""
    return params.get("record") or f"job-{job_id}"


def read_json(artifact) -> dict:
    with default_storage.open(artifact.storage_key, "rb") as f:
        return json.loads(f.read())


def pae_bytes(artifact) -> dict:
    """A PAE matrix (boltz's `pae_*.npz`) as base64 bytes, row by row: `size` × `size`
    values, each 0 to 255 over 0 to `max` Å."""
    import numpy as np

    with default_storage.open(artifact.storage_key, "rb") as f:
        pae = np.load(io.BytesIO(f.read()))["pae"]
    scaled = np.clip(np.rint(pae / PAE_MAX * 255), 0, 255).astype(np.uint8)
    return {
        "size": int(pae.shape[0]),
        "max": PAE_MAX,
        "values": base64.b64encode(scaled.tobytes()).decode(),
    }


def plddt_values(artifact) -> list[float]:
    """A sample's per-token pLDDT (boltz's `plddt_*.npz`, 0 to 1) on AlphaFold's scale, 0 to
    100, one decimal."""
    import numpy as np

    with default_storage.open(artifact.storage_key, "rb") as f:
        plddt = np.load(io.BytesIO(f.read()))["plddt"]
    return [round(float(v) * 100, 1) for v in plddt.reshape(-1)]
