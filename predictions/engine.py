"""The Boltz-2 resident engine: `boltz predict`'s own path (boltz 2.2.1, `boltz.main.predict`),
with the model loaded once per slot instead of once per job.

Per job it does what the CLI does for one input: prepare it (`process_inputs`: the record, the
structure, MSAs, constraints), feed it through boltz's inference data module, predict with the
model's `predict_step` under the CLI's precision, write with boltz's own writer, and, when the
input asks for affinity, run the affinity model the same way. Two things make the engine give
what the CLI gives for the same input, seed, options and checkpoint, whatever ran before:

- The random state. The CLI seeds once, then builds the model, which draws from torch's
  generator while it initialises layers whose weights the checkpoint then replaces; the data
  loader, the featuriser's random augmentation and the diffusion draw after that. The engine
  records the draws its own model load made (`RandomDraws`, at the level of aten ops) and, per
  job, seeds and replays them: the generator is where the CLI's would be. It costs drawing as
  many numbers as the model has parameters: milliseconds for the test model, 5.8 s on an
  H200 node's CPU for the full-size one (bench/gpu.py), more than a small peptide's whole
  prediction; so the states it ends in are kept per seed, and a job whose seed was seen (a
  design campaign's candidates share one) starts from them.
- RDKit's random state. boltz embeds a SMILES ligand's conformer with RDKit and no seed, from
  RDKit's process-wide generator, which Python cannot reset; each input is prepared in a fresh
  child of a process that imported boltz and never embedded anything (`Preparer`), as in a
  fresh CLI.
- The loop. Lightning's `trainer.predict` moves the model back to the CPU after each run (its
  strategy's teardown), so the engine calls the model's `predict_step` itself, as Lightning
  does: the data loader outside, the step under bf16 autocast (`precision="bf16-mixed"`) and
  inference mode, the writer's batch hook after. Kernels follow the rule of the model's own
  `setup("predict")`: only on a GPU of compute capability 8 or more.

boltz swallows failures (an input it cannot prepare is printed and skipped; an out-of-memory
batch returns `{"exception": True}`; a featurisation that fails makes the data set serve
another record instead): every job's outputs are checked to exist and to be its own, and a
job without them fails with the reason while the engine goes on serving.
"""

import atexit
import contextlib
import hashlib
import inspect
import itertools
import json
import multiprocessing
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import yaml

from jobs import markers
from jobs.engine_server import Engine, Stopped
from nodes import probe
from predictions.memory import MAX_MSA_SEQS

# boltz's own defaults (boltz.main.predict), for a parameter a job does not give.
DEFAULTS = {
    "recycling_steps": 3,
    "sampling_steps": 200,
    "diffusion_samples": 1,
    "step_scale": 1.5,
    "use_potentials": False,
    "output_format": "mmcif",
    "sampling_steps_affinity": 200,
    "diffusion_samples_affinity": 5,
}
# The best sample's figures a job keeps as metrics (boltz's confidence JSON keys).
CONFIDENCE = [
    "confidence_score",
    "ptm",
    "iptm",
    "ligand_iptm",
    "protein_iptm",
    "complex_plddt",
    "complex_iplddt",
    "complex_pde",
    "complex_ipde",
]
NUM_SUBSAMPLED_MSA = 1024  # boltz's --num_subsampled_msa
# `boltz predict`'s --subsample_msa is a click flag without a default, so it is off unless
# given (whatever its help and the function's signature say): the model works on every row it
# read, and draws no random permutation of them. The engine does the same.
SUBSAMPLE_MSA = False


class RandomDraws:
    """The draws from random generators made while it is active (every aten op that takes a
    Generator), kept as (op, argument shapes), and `replay`ed on fresh tensors of those shapes:
    the generators advance exactly as they did."""

    def __init__(self):
        self.calls = []
        self._after: dict[int, tuple] = {}  # seed -> the generators' states after the replay

    def __enter__(self):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        calls = self.calls

        def spec(value):
            if isinstance(value, torch.Tensor):
                return ("tensor", tuple(value.shape), value.dtype, value.device)
            return value

        class Recorder(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if any("Generator" in str(a.type) for a in func._schema.arguments):
                    calls.append(
                        (func, [spec(a) for a in args], {k: spec(v) for k, v in kwargs.items()})
                    )
                return func(*args, **kwargs)

        self._mode = Recorder()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self._mode.__exit__(*exc)

    def replay(self) -> None:
        import torch

        def make(value):
            if isinstance(value, tuple) and len(value) == 4 and value[0] == "tensor":
                return torch.empty(value[1], dtype=value[2], device=value[3])
            return value

        for func, args, kwargs in self.calls:
            func(*[make(a) for a in args], **{k: make(v) for k, v in kwargs.items()})

    def replay_after_seeding(self, seed: int) -> None:
        """`replay`, just after the generators were seeded with `seed`: the first time for a
        seed it replays and keeps the states it ends in (a few KB), later it sets them. A
        full-size Boltz-2 draws 521 M numbers while it loads, seconds on a CPU; a campaign's
        candidates all share its seed."""
        import torch

        kept = self._after.get(seed)
        if kept is None:
            self.replay()
            cuda = torch.cuda.is_initialized()
            kept = (torch.get_rng_state(), torch.cuda.get_rng_state_all() if cuda else None)
            if len(self._after) >= 256:
                self._after.pop(next(iter(self._after)))
            self._after[seed] = kept
        else:
            torch.set_rng_state(kept[0])
            if kept[1] is not None:
                torch.cuda.set_rng_state_all(kept[1])


class BoltzEngine(Engine):
    """Options (the node's, `PredictKind.engine_options`): `cache` (weights and `mols/`),
    `checkpoint` and `affinity_checkpoint` (files used instead of the cache's)."""

    def load(self, options: dict) -> None:
        began = time.monotonic()
        print("loading boltz", flush=True)
        import torch
        from boltz.main import (
            Boltz2DiffusionParams,
            BoltzSteeringParams,
            MSAModuleArgs,
            PairformerArgsV2,
        )
        from boltz.model.models.boltz2 import Boltz2

        # Forked now, with boltz imported and nothing else done: no model, no torch threads.
        self.preparer = Preparer()
        # What boltz.main.predict sets for the whole process.
        torch.set_grad_enabled(False)
        torch.set_float32_matmul_precision("highest")
        for key in ["CUEQ_DEFAULT_CONFIG", "CUEQ_DISABLE_AOT_TUNING"]:
            os.environ[key] = os.environ.get(key, "1")

        self.cache = Path(options["cache"]).expanduser()
        self.mols = self.cache / "mols"
        self.checkpoint = Path(options.get("checkpoint") or self.cache / "boltz2_conf.ckpt")
        self.affinity_checkpoint = Path(
            options.get("affinity_checkpoint") or self.cache / "boltz2_aff.ckpt"
        )
        for path in (self.checkpoint, self.mols):
            if not path.exists() or (path.is_file() and path.stat().st_size == 0):
                raise FileNotFoundError(
                    f"no Boltz-2 weights at {path}; run `manage.py boltzweights` on this node "
                    "(or set PORTAL_BOLTZ_CACHE / PORTAL_BOLTZ_CHECKPOINT)"
                )
        cuda = self.gpu is not None and torch.cuda.is_available()
        self.device = torch.device("cuda" if cuda else "cpu")
        # The model's setup("predict") rule, which only trainer.predict would apply, and only
        # where boltz's kernels are installed: boltz imports cuequivariance_torch inside the
        # forward pass, so without it a model loaded with kernels on fails at its first job
        # (as `boltz predict` does without `--no_kernels`).
        capable = cuda and torch.cuda.get_device_properties(self.device).major >= 8
        self.kernels = capable and probe.kernels_installed()
        if capable and not self.kernels:
            print(
                "cuequivariance_torch is not installed: boltz's kernels are off "
                "(pip install 'boltz[cuda]' on this node for faster triangle updates)",
                flush=True,
            )
        self.classes = Boltz2, Boltz2DiffusionParams, BoltzSteeringParams
        self.load_arguments = {
            "strict": True,
            "map_location": "cpu",
            "diffusion_process_args": asdict(Boltz2DiffusionParams()),
            "ema": False,
            "pairformer_args": asdict(PairformerArgsV2()),
            "msa_args": asdict(
                MSAModuleArgs(
                    subsample_msa=SUBSAMPLE_MSA,
                    num_subsampled_msa=NUM_SUBSAMPLED_MSA,
                    use_paired_feature=True,
                )
            ),
        }
        # boltz pins Lightning 2.5.0, which unpickles a checkpoint whole. Lightning 2.6 asks
        # torch for weights only unless told otherwise, and refuses boltz's checkpoints (their
        # hyper-parameters hold OmegaConf objects); the node's own weights are trusted alike.
        if "weights_only" in inspect.signature(Boltz2.load_from_checkpoint).parameters:
            self.load_arguments["weights_only"] = False
        print(f"loading the Boltz-2 structure model from {self.checkpoint}", flush=True)
        self.model, self.draws = self._load_model(self.checkpoint, use_kernels=self.kernels)
        self.provenance = {
            "engine": "boltz",
            "boltz_version": _version("boltz"),
            "torch_version": torch.__version__,
            "checkpoint": str(self.checkpoint),
            "checkpoint_sha256": _sha256(self.checkpoint),
            "device": str(self.device),
            "device_name": torch.cuda.get_device_name(self.device) if cuda else "CPU",
            "kernels": self.kernels,
        }
        self.affinity = None  # loaded when a job first asks for affinity
        self.loads, self.jobs = 1, 0
        print(
            f"Boltz-2 ready on {self.device} in {time.monotonic() - began:.1f} s "
            f"(kernels {'on' if self.kernels else 'off'})",
            flush=True,
        )

    def _load_model(self, checkpoint: Path, **extra):
        Boltz2, _, BoltzSteeringParams = self.classes
        steering = asdict(BoltzSteeringParams())
        with RandomDraws() as draws:
            model = Boltz2.load_from_checkpoint(
                checkpoint,
                predict_args=_predict_args(DEFAULTS),
                steering_args=steering,
                **self.load_arguments,
                **extra,
            )
        model.eval()
        return model.to(self.device), draws

    def memory_held(self) -> int:
        import torch

        if self.device.type != "cuda":
            return 0
        return int(torch.cuda.memory_reserved(self.device))

    # --- one job -----------------------------------------------------------------------------
    def run(self, request: dict, job) -> None:
        if request.get("mode") == "affinity":
            self.run_affinity(request, job)
        else:
            self.run_prediction(request, job)

    def _begin(self, request: dict) -> tuple[dict, str, Path]:
        """A job's start, whatever it asks: its options over boltz's defaults, its record's
        name, and an empty work folder; the engine says who it is and how many jobs it ran."""
        self.jobs += 1
        print(
            f"Boltz-2 engine pid={os.getpid()} loads={self.loads} jobs={self.jobs} "
            f"device={self.device}",
            flush=True,
        )
        work = Path(request["work"])
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return {**DEFAULTS, **request["params"]}, request["record"], work

    def run_prediction(self, request: dict, job) -> None:
        from pytorch_lightning import seed_everything

        params, record_id, work = self._begin(request)
        # The document the job stored, as the YAML boltz reads.
        data = work / f"{record_id}.yaml"
        data.write_text(yaml.safe_dump(request["document"], sort_keys=False))

        markers.progress(2, "preparing the input")
        # The CLI's random state at this point of its run: seeded, then the model's load.
        seed_everything(params["seed"], verbose=False)
        self.draws.replay_after_seeding(params["seed"])
        record, processed = self._prepare(data, work)

        markers.progress(10, "predicting the structure")
        self._configure(self.model, params)
        predictions = work / "predictions"
        end = 65 if record.affinity is not None else 90
        with Progress(self.model, 10, end, "structure", job):
            self._predict(
                self.model, processed, self._writer(processed, predictions, params), affinity=False
            )
        files = self._check_structure(predictions / record_id, record_id, params)

        # What ran, and how to run it again: the engine, and the seed and options it ran with.
        provenance = {**self.provenance, "seed": params["seed"], "options": _options(params)}
        if record.affinity is not None:
            markers.progress(70, "predicting the affinity")
            self._predict_affinity(processed, predictions, params, job)
            # The complex the affinity model read (boltz's writer keeps it beside the rest).
            files.append(self._check(predictions / record_id / f"pre_affinity_{record_id}.npz"))
            files.append(self._check(predictions / record_id / f"affinity_{record_id}.json"))
            provenance["affinity_checkpoint"] = str(self.affinity_checkpoint)
            provenance["affinity_checkpoint_sha256"] = self.affinity_sha256
        self._report(predictions / record_id, record_id, record)

        markers.progress(95, "writing the results")
        out = Path(request["out"])
        for path in files:
            shutil.copyfile(path, out / path.name)
        # The input as it ran, beside the MSAs and templates it names, so the archive holds
        # what `boltz predict input.yaml` needs to predict it again.
        (out / "input.yaml").write_text(yaml.safe_dump(request["archived"], sort_keys=False))
        for attached in request.get("attached", []):
            path = Path(attached)
            if (out / path.name).exists():
                print(f"{path.name} is not archived: an output has its name", flush=True)
            else:
                shutil.copyfile(path, out / path.name)
        (out / "chains.json").write_text(json.dumps({"chains": _chains(processed, record_id)}))
        (out / "provenance.json").write_text(json.dumps(provenance, indent=2))
        for msa in sorted((processed / "msa").glob("*.npz")):
            shutil.copyfile(msa, out / f"msa_{msa.name}")
        markers.progress(100, "done")

    def run_affinity(self, request: dict, job) -> None:
        """Boltz-2's affinity pass on a complex the scientist gave (predictions/complexes.py):
        as `boltz predict` runs it after its structure pass, on the structure its writer would
        have left (`pre_affinity_<id>.npz`), here with the complex's coordinates; seeded just
        before the affinity model's load, as that pass run alone."""
        import numpy as np
        from boltz.data.write.mmcif import to_mmcif
        from pytorch_lightning import seed_everything

        from predictions import complexes

        params, record_id, work = self._begin(request)
        data = work / f"{record_id}.yaml"
        data.write_text(yaml.safe_dump(request["document"], sort_keys=False))

        markers.progress(2, "preparing the complex")
        complex_ = complexes.read_complex(
            Path(request["structure"]),
            ligand=Path(request["ligand"]) if request.get("ligand") else None,
            residue=params.get("ligand_residue"),
            chain=params.get("ligand_chain"),
            mols=self.mols,
        )
        record, processed = self._prepare(data, work)
        predictions = work / "predictions"
        folder = predictions / record_id
        folder.mkdir(parents=True)
        structure, missing = complexes.pose(complex_, processed, record_id)
        if missing:
            print(f"{missing} atoms boltz expects are not in the file: left at the origin")
        # As boltz's writer saves it; and as an mmCIF, for the page to show.
        np.savez_compressed(folder / f"pre_affinity_{record_id}.npz", **asdict(structure))
        shown = folder / f"{record_id}_complex.cif"
        shown.write_text(to_mmcif(structure, boltz2=True))

        seed_everything(params["seed"], verbose=False)
        self._predict_affinity(
            processed, predictions, params, job, span=(10, 90), seeded=params["seed"]
        )
        files = [
            shown,
            self._check(folder / f"pre_affinity_{record_id}.npz"),
            self._check(folder / f"affinity_{record_id}.json"),
        ]
        figures = json.loads(files[-1].read_text())
        for key in ("affinity_pred_value", "affinity_probability_binary"):
            markers.metric(0, key, float(figures[key]))
        provenance = {
            **self.provenance,
            "seed": params["seed"],
            "options": _options(params),
            "affinity_checkpoint": str(self.affinity_checkpoint),
            "affinity_checkpoint_sha256": self.affinity_sha256,
        }
        markers.progress(95, "writing the results")
        out = Path(request["out"])
        for path in files:
            shutil.copyfile(path, out / path.name)
        (out / "input.yaml").write_text(yaml.safe_dump(request["document"], sort_keys=False))
        (out / "provenance.json").write_text(json.dumps(provenance, indent=2))
        markers.progress(100, "done")

    def _prepare(self, data: Path, work: Path):
        """boltz's own preparation of the input, in a fresh child of the engine's preparer
        (`Preparer`, `prepare_input`); what it printed is the reason if it failed."""
        from boltz.data.types import Manifest

        said = work / "prepare.log"
        exitcode = self.preparer.prepare(str(data), str(work), str(self.cache), str(said))
        processed = work / "processed"
        manifest = processed / "manifest.json"
        records = Manifest.load(manifest).records if manifest.exists() else []
        if [r.id for r in records] != [data.stem]:
            printed = said.read_text() if said.exists() else ""
            lines = [line for line in printed.splitlines() if line.strip()]
            if exitcode:
                lines.append(f"the preparation ended with exit code {exitcode}")
            reason = next(
                (line for line in reversed(lines) if line.startswith("Failed to process")),
                lines[-1] if lines else "no record came out",
            )
            raise RuntimeError(f"boltz could not prepare the input: {reason}")
        return records[0], processed

    def _configure(self, model, params: dict) -> None:
        """The per-run options of the CLI, set on the loaded model."""
        _, _, BoltzSteeringParams = self.classes
        model.predict_args = _predict_args(params)
        model.structure_module.step_scale = params["step_scale"]
        steering = BoltzSteeringParams()
        steering.fk_steering = params["use_potentials"]
        steering.physical_guidance_update = params["use_potentials"]
        model.steering_args = asdict(steering)

    def _writer(self, processed: Path, predictions: Path, params: dict):
        from boltz.data.write.writer import BoltzWriter

        return BoltzWriter(
            data_dir=processed / "structures",
            output_dir=predictions,
            output_format=params["output_format"],
            boltz2=True,
        )

    def _data(self, processed: Path, manifest, target_dir: Path, **affinity):
        from boltz.data.module.inferencev2 import Boltz2InferenceDataModule

        def present(name):
            return processed / name if (processed / name).exists() else None

        return Boltz2InferenceDataModule(
            manifest=manifest,
            target_dir=target_dir,
            msa_dir=processed / "msa",
            mol_dir=self.mols,
            num_workers=0,
            constraints_dir=present("constraints"),
            template_dir=present("templates"),
            extra_mols_dir=present("mols"),
            **affinity,
        )

    def _predict(self, model, processed: Path, writer, affinity: bool, manifest=None, target=None):
        """Lightning's predict loop for one record, without Lightning moving the model."""
        import torch
        from boltz.data.types import Manifest

        manifest = manifest or Manifest.load(processed / "manifest.json")
        data = (
            self._data(processed, manifest, target, override_method="other", affinity=True)
            if affinity
            else self._data(processed, manifest, processed / "structures")
        )
        wanted = manifest.records[0].id
        batches = iter(data.predict_dataloader())
        with torch.inference_mode():
            for index in itertools.count():
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except RecursionError:
                    # The data set serves record 0 instead of one it cannot featurise; alone in
                    # its run, the record stands in for itself until Python gives up.
                    raise RuntimeError(f"boltz could not featurise the input '{wanted}'") from None
                batch = data.transfer_batch_to_device(batch, self.device, 0)
                with torch.autocast(self.device.type, dtype=torch.bfloat16):
                    prediction = model.predict_step(batch, index)
                if prediction["exception"]:
                    raise RuntimeError(
                        "the prediction ran out of memory on this GPU; a smaller input, fewer "
                        "diffusion samples or a larger GPU would fit"
                    )
                if batch["record"][0].id != wanted:
                    # The data set serves another record when one fails to featurise.
                    raise RuntimeError(f"boltz could not featurise the input '{wanted}'")
                writer.write_on_batch_end(None, model, prediction, None, batch, index, 0)

    def _predict_affinity(
        self, processed: Path, predictions: Path, params: dict, job, span=(70, 90), seeded=None
    ) -> None:
        """boltz's affinity pass. `seeded`: the seed the generators were just seeded with
        (an affinity job's, nothing run since), whose states after the model's load draws
        are then kept per seed, as the structure model's are."""
        from boltz.data.types import Manifest
        from boltz.data.write.writer import BoltzAffinityWriter

        if self.affinity is None:
            # As the CLI does, the first time: load it now (its draws come after the
            # structure's); later jobs replay those draws instead.
            print(f"loading the Boltz-2 affinity model from {self.affinity_checkpoint}")
            self.affinity, self.affinity_draws = self._load_model(
                self.affinity_checkpoint, affinity_mw_correction=False
            )
            self.affinity_sha256 = _sha256(self.affinity_checkpoint)
        elif seeded is not None:
            self.affinity_draws.replay_after_seeding(seeded)
        else:
            self.affinity_draws.replay()
        _, _, BoltzSteeringParams = self.classes
        self.affinity.predict_args = {
            "recycling_steps": 5,
            "sampling_steps": params["sampling_steps_affinity"],
            "diffusion_samples": params["diffusion_samples_affinity"],
            "max_parallel_samples": 1,
            "write_confidence_summary": False,
            "write_full_pae": False,
            "write_full_pde": False,
        }
        self.affinity.structure_module.step_scale = params["step_scale"]
        self.affinity.affinity_mw_correction = params.get("affinity_mw_correction", False)
        steering = BoltzSteeringParams()
        steering.fk_steering = steering.physical_guidance_update = False
        steering.contact_guidance_update = False
        self.affinity.steering_args = asdict(steering)
        manifest = Manifest.load(processed / "manifest.json")
        writer = BoltzAffinityWriter(data_dir=processed / "structures", output_dir=predictions)
        with Progress(self.affinity, *span, "affinity", job):
            self._predict(
                self.affinity,
                processed,
                writer,
                affinity=True,
                manifest=manifest,
                target=predictions,
            )

    def _report(self, folder: Path, record_id: str, record) -> None:
        """The best sample's confidence (and the affinity) as the job's metrics: chains by
        their names in the input."""
        best = json.loads((folder / f"confidence_{record_id}_model_0.json").read_text())
        names = {str(i): chain.chain_name for i, chain in enumerate(record.chains)}
        for key in CONFIDENCE:
            if best.get(key) is not None:
                markers.metric(0, key, float(best[key]))
        for index, value in (best.get("chains_ptm") or {}).items():
            markers.metric(0, f"ptm_{names.get(index, index)}", float(value))
        for first, row in (best.get("pair_chains_iptm") or {}).items():
            for second, value in row.items():
                if first < second:
                    pair = f"{names.get(first, first)}_{names.get(second, second)}"
                    markers.metric(0, f"iptm_{pair}", float(value))
        affinity = folder / f"affinity_{record_id}.json"
        if affinity.exists():
            for key, value in json.loads(affinity.read_text()).items():
                if key in ("affinity_pred_value", "affinity_probability_binary"):
                    markers.metric(0, key, float(value))

    def _check_structure(self, folder: Path, record_id: str, params: dict) -> list[Path]:
        """The record's own files, one set per sample; a missing one fails the job."""
        extension = "cif" if params["output_format"] == "mmcif" else "pdb"
        files = []
        for k in range(params["diffusion_samples"]):
            files += [
                self._check(folder / f"{record_id}_model_{k}.{extension}"),
                self._check(folder / f"confidence_{record_id}_model_{k}.json"),
                self._check(folder / f"plddt_{record_id}_model_{k}.npz"),
                self._check(folder / f"pae_{record_id}_model_{k}.npz"),
                self._check(folder / f"pde_{record_id}_model_{k}.npz"),
            ]
        return files

    def _check(self, path: Path) -> Path:
        if not path.is_file() or path.stat().st_size == 0:
            raise RuntimeError(f"boltz wrote no {path.name}")
        return path


class Progress:
    """A pass of a model told as progress from `start` to `end` %: the trunk's recycling passes
    (its first quarter), then each diffusion step. Forward hooks on the pairformer and on the
    diffusion's score model count their calls and read only shapes, so the numbers computed
    are the CLI's, byte for byte. A line goes out when the whole percent or the phase changes:
    some dozens a job, not one per step. Between two steps it also stops the job if it was
    cancelled (`Stopped`), so the engine stays loaded for the next."""

    def __init__(self, model, start: float, end: float, what: str, job):
        args = model.predict_args
        self.model, self.what, self.job = model, what, job
        self.passes = args["recycling_steps"] + 1
        self.steps = args["sampling_steps"]
        self.samples = args["diffusion_samples"]
        self.start, self.end = start, end
        self.trunk_end = start + (end - start) / 4
        self.passes_done = 0
        self.sampled = 0  # samples denoised, summed over the diffusion's calls
        self.said = None
        self.handles = []

    def __enter__(self):
        trunk = self.model.pairformer_module
        trunk = getattr(trunk, "_orig_mod", trunk)
        score = self.model.structure_module.score_model
        self.handles = [
            trunk.register_forward_hook(self._trunk_pass),
            score.register_forward_hook(self._diffusion_call, with_kwargs=True),
        ]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()

    def _trunk_pass(self, module, args, output) -> None:
        self.passes_done += 1
        done = min(self.passes_done, self.passes)
        percent = self.start + (self.trunk_end - self.start) * done / self.passes
        self._say(percent, f"{self.what}: trunk, recycling pass {done} of {self.passes}")

    def _diffusion_call(self, module, args, kwargs, output) -> None:
        noisy = kwargs.get("r_noisy")
        self.sampled += int(noisy.shape[0]) if noisy is not None else self.samples
        step = min(self.sampled // max(1, self.samples), self.steps)
        percent = self.trunk_end + (self.end - self.trunk_end) * step / max(1, self.steps)
        self._say(percent, f"{self.what}: diffusion, step {step} of {self.steps}")

    def _say(self, percent: float, message: str) -> None:
        if self.job.cancelled:
            raise Stopped(f"after {message}")
        phase = message.split(",")[0]
        key = (int(percent), phase)
        if key != self.said:
            self.said = key
            markers.progress(round(percent, 1), message)


def _chains(processed: Path, record_id: str) -> list[dict]:
    """The chains in token order (the order of the PAE's rows): name, type, tokens (a residue
    of a polymer, an atom of a ligand, each), for pages that draw per-chain figures."""
    from boltz.data import const
    from boltz.data.types import StructureV2

    structure = StructureV2.load(processed / "structures" / f"{record_id}.npz")
    names = {number: name.lower() for name, number in const.chain_type_ids.items()}
    ligand = const.chain_type_ids["NONPOLYMER"]
    return [
        {
            "name": str(chain["name"]),
            "type": names[int(chain["mol_type"])],
            "tokens": int(chain["atom_num"] if chain["mol_type"] == ligand else chain["res_num"]),
        }
        for chain in structure.chains
    ]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class Preparer:
    """Where inputs are prepared: a copy of the engine forked just after its imports (before
    the model loads, before torch starts a thread of its own), which never prepares anything
    itself; each input is prepared in a child forked from it (`prepare_input`), so from a
    process that imported boltz and did nothing else, as a fresh `boltz predict` is. Forked
    rather than started anew, it shares the engine's imports instead of paying for them a
    second time (about 7 s of a core). It ends with the engine: its end of the pipe closes."""

    def __init__(self):
        fork = multiprocessing.get_context("fork")
        self._connection, theirs = fork.Pipe()
        process = fork.Process(target=_prepare_each, args=(theirs, self._connection))
        process.start()
        theirs.close()
        # Before multiprocessing's own exit handler, which waits for the preparer to end.
        atexit.register(self._connection.close)

    def prepare(self, *args: str) -> int | None:
        """`prepare_input(*args)` in a fresh child of the preparer; the child's exit code."""
        self._connection.send(args)
        return self._connection.recv()


def _prepare_each(connection, engines_end) -> None:
    """The preparer: one fresh child per input the engine sends, until the engine is gone."""
    engines_end.close()
    fork = multiprocessing.get_context("fork")
    while True:
        try:
            args = connection.recv()
        except EOFError:
            return
        child = fork.Process(target=prepare_input, args=args)
        child.start()
        child.join()
        connection.send(child.exitcode)


def prepare_input(data: str, work: str, cache: str, said: str) -> None:
    """`process_inputs` on one input, as `boltz predict` runs it, its output into `said`.

    It runs in a process forked from the engine's preparer, which imported boltz and never
    prepares anything itself: a ligand given as SMILES gets its conformer from RDKit's ETKDG
    with no seed, so from RDKit's process-wide generator, which Python cannot reset. Forked
    from a process that never embedded a molecule, each job's first ligand gets what a fresh
    `boltz predict` process gives it, however many jobs the engine ran before. It draws
    nothing from torch's, numpy's or Python's generators."""
    from boltz.main import process_inputs

    with (
        open(said, "w") as out,  # noqa: PTH123
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(out),
    ):
        process_inputs(
            data=[Path(data)],
            out_dir=Path(work),
            ccd_path=Path(cache) / "ccd.pkl",
            mol_dir=Path(cache) / "mols",
            use_msa_server=False,
            msa_server_url="",
            msa_pairing_strategy="greedy",
            boltz2=True,
            preprocessing_threads=1,
            max_msa_seqs=MAX_MSA_SEQS,
        )


def _version(package: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _options(params: dict) -> dict:
    """The engine options a job ran with (boltz's names), for its provenance."""
    return {name: params[name] for name in (*DEFAULTS, "affinity_mw_correction") if name in params}


def _predict_args(params: dict) -> dict:
    return {
        "recycling_steps": params["recycling_steps"],
        "sampling_steps": params["sampling_steps"],
        "diffusion_samples": params["diffusion_samples"],
        "max_parallel_samples": None,
        "write_confidence_summary": True,
        "write_full_pae": False,
        "write_full_pde": False,
    }
