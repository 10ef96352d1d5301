"""An offline Boltz-2 for tests: a tiny random model and the cache `boltz predict` expects.

The real weights (~4.4 GB) and the `mols` archive (~1.9 GB) cannot be downloaded here, so
`make_boltz_cache` builds, in a few seconds, what the real `boltz predict` (boltz 2.2.1) reads:

- a structure checkpoint: a randomly initialised `Boltz2` with small widths, saved the way
  Lightning saves one, that `Boltz2.load_from_checkpoint(..., strict=True)` in
  `boltz.main.predict` accepts with the arguments the CLI forces;
- an affinity checkpoint: the same trunk plus the two-model affinity ensemble, for the CLI's
  second pass (`--affinity_checkpoint`);
- `mols/<CODE>.pkl` for the canonical protein residues (and DNA/RNA nucleotides), made with
  RDKit in the format `boltz.data.mol.load_molecules` reads, and for what the peptide designs'
  binder types name: the linker `SEZ` and the glycosylated residue `GLYCO_RESIDUE`;
- zero-byte `mols.tar`, `boltz2_conf.ckpt` and `boltz2_aff.ckpt`, whose existence is all that
  `boltz.main.download_boltz2` checks before it would download.

Pass the checkpoints explicitly (`--checkpoint`, `--affinity_checkpoint`): the default names
in the cache are the empty placeholders. Building takes ~1.5 s plus ~3 s to import boltz; a
20-residue protein then predicts in ~5.5 s per CLI process on 2 cores (most of it imports).

What to expect from a random model:
- every file the CLI writes is written, and the same `--seed` gives byte-identical files;
- with `--sampling_steps 2` the sampler overshoots (step_scale 1.5 from sigma 2560 in one
  step) and atoms lie thousands of angstroms out, which overflows the fixed columns of
  `--output_format pdb`; from ~10 steps they stay within tens of angstroms, at the same cost;
- the affinity values barely depend on the input (the head averages over all pairs);
  `--affinity_mw_correction` adds a term in the ligand's molecular weight.

boltz, torch and RDKit are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import random
import subprocess
import sys
import tempfile
from pathlib import Path

# Files whose mere existence makes `boltz.main.download_boltz2(cache)` skip its downloads:
# it only tests `.exists()`, and extracts `mols.tar` only when `mols/` is missing.
DOWNLOAD_PLACEHOLDERS = ("mols.tar", "boltz2_conf.ckpt", "boltz2_aff.ckpt")

# One-letter codes to CCD codes, with the RDKit `MolFromSequence` flavour that builds each
# family: 0 = L-peptide (adds the terminal OXT), 3 = RNA and 7 = DNA with a 5' phosphate
# (adds P, OP1, OP2 and the leaving OP3), the atoms boltz names in `const.ref_atoms`.
PROTEIN_RESIDUES = {
    "A": "ALA", "R": "ARG", "N": "ASN", "D": "ASP", "C": "CYS", "Q": "GLN", "E": "GLU",
    "G": "GLY", "H": "HIS", "I": "ILE", "L": "LEU", "K": "LYS", "M": "MET", "F": "PHE",
    "P": "PRO", "S": "SER", "T": "THR", "W": "TRP", "Y": "TYR", "V": "VAL",
}  # fmt: skip
RNA_RESIDUES = {"A": "A", "C": "C", "G": "G", "U": "U"}
DNA_RESIDUES = {"A": "DA", "C": "DC", "G": "DG", "T": "DT"}
_PEPTIDE, _RNA_5P, _DNA_5P = 0, 3, 7

# The unknown residue of each polymer (`const.unk_token`) is the backbone alone: UNK has
# alanine's atoms; N and DN keep the sugar-phosphate of adenosine and deoxyadenosine.
UNKNOWN_RESIDUES = {"UNK": ("A", _PEPTIDE), "N": ("A", _RNA_5P), "DN": ("A", _DNA_5P)}

# Atoms that leave when the residue links to the next one (CCD `pdbx_leaving_atom_flag`).
LEAVING_ATOMS = {"OXT", "OP3"}

# Conformers are part of the shared `mols/` folder, so they use their own fixed seed rather
# than the model's: every seed's checkpoint reads the same reference geometry.
CONFORMER_SEED = 42

# The code of a glycopeptide's sugar-bearing residue in these `mols/` (designs' `glycan`):
# N4-(beta-D-glucopyranosyl)-L-asparagine. Four letters, so that it names no real CCD
# component (nearly every three-character code is taken); boltz's PDB writer cuts residue
# names to three characters, its mmCIF writer keeps them whole.
GLYCO_RESIDUE = "NGLC"

# Molecules beyond the polymer residues, for the peptide designs' binder types (designs/kinds.py),
# by code: a SMILES, its heavy atoms' names in the SMILES's order, and the leaving atoms.
# - SEZ, a bicyclic binder's three-armed linker: mesitylene (1,3,5-trimethylbenzene), whose
#   methyl carbons CD, C1 and C2 each bond to a cysteine's SG (`designs.kinds.LINKERS`); boltz
#   builds a CCD ligand from all the atoms of its mol, hydrogens aside.
# - GLYCO_RESIDUE: boltz builds a modified residue from all its mol's atoms but the leaving
#   ones (`parse_ccd_residue(drop_leaving_atoms=True)`, so each atom needs `leaving_atom`), and
#   finds its backbone frame by the names N, CA and C; asparagine keeps boltz's names for ASN
#   (`const.ref_atoms`) and the leaving OXT, and the glucose on ND2 the sugar's own (C1-C6,
#   O2-O6), all unique, as the featurizer looks each atom up by name.
DESIGN_MOLECULES = {
    "SEZ": ("Cc1cc(C)cc(C)c1", ("CD", "CR1", "CR2", "CR3", "C1", "CR4", "CR5", "C2", "CR6"), ()),
    GLYCO_RESIDUE: (
        "N[C@H](C(=O)O)CC(=O)N[C@@H]1O[C@H](CO)[C@@H](O)[C@H](O)[C@H]1O",
        (
            *("N", "CA", "C", "O", "OXT", "CB", "CG", "OD1", "ND2"),
            *("C1", "O5", "C5", "C6", "O6", "C4", "O4", "C3", "O3", "C2", "O2"),
        ),
        ("OXT",),
    ),
}

# Small widths that keep the model at a few MB. token_s must be a multiple of 16 because the
# CLI forces 16 pairformer heads; every other width is ours to choose. Two thirds of the 1.6 M
# parameters are the 64 pairformer blocks the CLI forces, whose triangle attention keeps its
# default 4 heads of 32 channels whatever token_z is.
TOKEN_S = 16
TOKEN_Z = 8
ATOM_S = 8
ATOM_Z = 4

# Fixed by the featurizer (boltz.data.feature.featurizerv2) rather than chosen:
# - each atom's feature vector is 3 (reference position) + 1 (charge) + 128 (element one-hot)
#   + 4 x 64 (atom-name characters) = 388 wide with the atom-name characters on and without
#   the optional backbone and residue features;
ATOM_FEATURE_DIM = 388
# - the featurizer pads the atoms to a multiple of 32, the query window of the atom attention
#   (the key window of 128 is the released model's);
ATOMS_PER_WINDOW_QUERIES = 32
ATOMS_PER_WINDOW_KEYS = 128
# - 64 distance bins, as in the released model (the confidence and affinity heads bin
#   distances into 64 too).
NUM_BINS = 64
# Raised whenever the recipe changes what a checkpoint holds (2: the template module; 3: no
# zero-initialised projections).
RECIPE = 3

# An mmCIF as the portal's upload check takes it (a data block, an atom table) that boltz's
# parser cannot read: a template it refuses.
BROKEN_CIF = "data_x\nloop_\n_atom_site.group_PDB\n_atom_site.id\nATOM 1\n"


# What every `boltz_predict` call passes: offline on the CPU, no recycling, 10 sampling steps.
CLI_OPTIONS = (
    *("--accelerator", "cpu", "--no_kernels", "--num_workers", "0"),
    *("--recycling_steps", "0", "--sampling_steps", "10"),
)


def boltz_predict(
    cache: dict, target: Path, out: Path, *extra: str, seed: int = 0, cwd: Path | None = None
) -> Path:
    """The real `boltz predict` CLI on the tiny model of `cache` (make_boltz_cache), offline on
    the CPU with the tests' fast options (no recycling, 10 sampling steps), for a YAML or a
    folder of them; `cwd` is where the YAML's MSA and template paths start. Returns the folder
    of a single YAML's predictions."""
    subprocess.run(
        [
            str(Path(sys.executable).with_name("boltz")),
            "predict",
            str(target),
            *("--out_dir", str(out), "--cache", str(cache["cache"])),
            *("--checkpoint", str(cache["checkpoint"])),
            *CLI_OPTIONS,
            *("--seed", str(seed)),
            *extra,
        ],
        check=True,
        capture_output=True,
        timeout=600,
        cwd=cwd,
    )
    return out / f"boltz_results_{target.stem}" / "predictions" / target.stem


def reference_dir() -> Path:
    """Where `boltz_reference` keeps the CLI's outputs between test runs (and fresh clones):
    PORTAL_TEST_REFERENCE_DIR, else the user's cache directory."""
    named = os.environ.get("PORTAL_TEST_REFERENCE_DIR")
    if named:
        return Path(named)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "science-portal" / "boltz-reference"


def boltz_reference(
    cache: dict, target: Path, out: Path, *extra: str, seed: int = 0, cwd: Path | None = None
) -> Path:
    """What `boltz predict` writes for one YAML (`boltz_predict`'s arguments): the real CLI's
    predictions folder, kept on disk under a key of everything they depend on (the
    checkpoints' and molecules' bytes, the input's name and bytes and those of the files
    beside it, the seed and options, the versions of boltz and what it computes with), so the
    CLI runs only for a key it has not seen. The folder is copied to where boltz_predict
    would have written it, and that path returned."""
    import hashlib
    import json
    import shutil
    from importlib.metadata import version

    def digest(path: Path) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()

    # A path among the options counts by its bytes, not by where this checkout keeps it.
    options = [digest(arg) if Path(arg).is_file() else arg for arg in extra]
    beside = sorted(p for p in Path(cwd).rglob("*") if p.is_file()) if cwd else []
    key = {
        "checkpoint": digest(cache["checkpoint"]),
        "mols": [(p.name, digest(p)) for p in sorted(Path(cache["mols"]).glob("*.pkl"))],
        "input": (target.name, digest(target)),
        "beside": [(str(p.relative_to(cwd)), digest(p)) for p in beside],
        "argv": [*CLI_OPTIONS, "--seed", str(seed), *options],
        "versions": [version(p) for p in ("boltz", "torch", "rdkit", "numpy")],
    }
    kept = reference_dir() / hashlib.sha256(json.dumps(key).encode()).hexdigest()
    folder = out / f"boltz_results_{target.stem}" / "predictions" / target.stem
    if not kept.is_dir():
        predicted = boltz_predict(cache, target, out, *extra, seed=seed, cwd=cwd)
        part = kept.with_name(f"{kept.name}.{os.getpid()}.part")
        shutil.copytree(predicted, part)
        (part.parent / f"{kept.name}.json").write_text(json.dumps(key, indent=1))
        try:
            part.replace(kept)  # whole or not at all, for a run beside this one
        except OSError:  # that run kept the same outputs first
            shutil.rmtree(part)
        return predicted
    shutil.copytree(kept, folder)
    return folder


def make_boltz_cache(cache: Path, *, seed: int = 0) -> dict:
    """Build in `cache`: a tiny random Boltz-2 structure checkpoint, a tiny random Boltz-2
    affinity checkpoint, `mols/` pickles for the canonical residues, and the zero-byte
    placeholders that keep boltz's download step offline. Returns {"checkpoint": Path,
    "affinity_checkpoint": Path, "mols": Path, "cache": Path}. Deterministic for a seed.
    Idempotent (reuses what is there).

    The checkpoints are named for their seed and the version of the recipe below
    (`tiny-boltz2-v2-conf-seed0.ckpt`), so one cache can hold several seeds and a file that
    exists is always the one this seed and recipe would build. Every
    file is written to a temporary name and renamed, so concurrent callers never read half a
    file. Existing files, real ones included, are never overwritten.
    """
    cache = Path(cache).resolve()  # absolute, as BOLTZ_CACHE must be
    cache.mkdir(parents=True, exist_ok=True)
    mols = write_mols(cache / "mols")
    checkpoint = cache / f"tiny-boltz2-v{RECIPE}-conf-seed{seed}.ckpt"
    if not checkpoint.exists():
        write_checkpoint(checkpoint, structure_hparams(), seed=seed)
    affinity_checkpoint = cache / f"tiny-boltz2-v{RECIPE}-aff-seed{seed}.ckpt"
    if not affinity_checkpoint.exists():
        write_checkpoint(affinity_checkpoint, affinity_hparams(), seed=seed)
    write_download_placeholders(cache)
    return {
        "checkpoint": checkpoint,
        "affinity_checkpoint": affinity_checkpoint,
        "mols": mols,
        "cache": cache,
    }


def write_download_placeholders(cache: Path) -> list[Path]:
    """Create the empty files that stop `download_boltz2(cache)` from downloading anything.

    Run after `mols/` exists: with `mols/` missing, boltz would try to extract the empty tar.
    """
    paths = []
    for name in DOWNLOAD_PLACEHOLDERS:
        path = Path(cache) / name
        if not path.exists():
            path.touch()
        paths.append(path)
    return paths


# --- The model -----------------------------------------------------------------------------


def structure_hparams() -> dict:
    """The hyper-parameters of the tiny structure model, as `Boltz2(**hparams)` takes them.

    Whatever the CLI passes to `load_from_checkpoint` replaces the saved value, and the weights
    must still fit with `strict=True`; so the pairformer (64 blocks, 16 heads) and the MSA module
    (msa_s 64, 4 blocks, paired feature on) are built exactly as `boltz.main` forces them, from
    its own dataclasses. Everything else is one block or head deep and a few channels wide.
    """
    from dataclasses import asdict

    from boltz.main import (
        Boltz2DiffusionParams,
        BoltzSteeringParams,
        MSAModuleArgs,
        PairformerArgsV2,
    )
    from omegaconf import OmegaConf

    return {
        "atom_s": ATOM_S,
        "atom_z": ATOM_Z,
        "token_s": TOKEN_S,
        "token_z": TOKEN_Z,
        "num_bins": NUM_BINS,
        "atom_feature_dim": ATOM_FEATURE_DIM,
        "atoms_per_window_queries": ATOMS_PER_WINDOW_QUERIES,
        "atoms_per_window_keys": ATOMS_PER_WINDOW_KEYS,
        # Read as attributes (`training_args.max_lr`) by Boltz2.on_load_checkpoint, so they
        # must be OmegaConf objects as in the released checkpoints; only training uses the rest.
        "training_args": OmegaConf.create(
            {
                "recycling_steps": 0,
                "sampling_steps": 2,
                "diffusion_multiplicity": 1,
                "diffusion_samples": 1,
                "confidence_loss_weight": 1.0,
                "diffusion_loss_weight": 1.0,
                "distogram_loss_weight": 1.0,
                "symmetry_correction": False,
                "max_lr": 1e-3,
                "weight_decay": 0.0,
            }
        ),
        "validation_args": OmegaConf.create(
            {
                "recycling_steps": 0,
                "sampling_steps": 2,
                "diffusion_samples": 1,
                "symmetry_correction": False,
                "run_confidence_sequentially": True,
            }
        ),
        # The released model conditions on method, modified residues, cyclic chains and
        # molecule type; keeping these on makes the tiny model read the same features.
        "embedder_args": {
            "atom_encoder_depth": 1,
            "atom_encoder_heads": 2,
            "add_method_conditioning": True,
            "add_modified_flag": True,
            "add_cyclic_flag": True,
            "add_mol_type_feat": True,
        },
        "msa_args": asdict(MSAModuleArgs(use_paired_feature=True)),
        # Templates reach the model (boltz 2's template module), a few channels wide.
        "use_templates": True,
        "use_templates_v2": True,
        "template_args": {
            "template_dim": 8,
            "template_blocks": 1,
            "pairwise_head_width": 4,
            "pairwise_num_heads": 2,
        },
        "pairformer_args": asdict(PairformerArgsV2()),
        # The diffusion transformer works on 2 * token_s channels; the encoder and decoder
        # biases are depth * heads wide, shared with DiffusionConditioning.
        "score_model_args": {
            "sigma_data": 16,
            "atom_encoder_depth": 1,
            "atom_encoder_heads": 2,
            "token_transformer_depth": 1,
            "token_transformer_heads": 2,
            "atom_decoder_depth": 1,
            "atom_decoder_heads": 2,
            "conditioning_transition_layers": 1,
        },
        "diffusion_process_args": asdict(Boltz2DiffusionParams()),
        "diffusion_loss_args": {},  # training only
        "confidence_prediction": True,
        "confidence_model_args": {
            "num_dist_bins": NUM_BINS,
            "max_dist": 22,
            "add_s_to_z_prod": True,
            "add_s_input_to_s": True,
            "add_z_input_to_z": True,
            "pairformer_args": {"num_blocks": 1, "num_heads": 1, "dropout": 0.0},
            "confidence_args": {},
        },
        # alpha_pae > 0 is what makes predict_step return pae, ptm and iptm, and so what makes
        # the writer write the PAE file and the pTM/ipTM fields of the confidence summary.
        "alpha_pae": 1.0,
        "fix_sym_check": True,
        "cyclic_pos_enc": True,
        "use_kernels": False,
        "ema": False,
        # Replaced by the CLI; kept so a model loaded without them still predicts quickly.
        "predict_args": {
            "recycling_steps": 0,
            "sampling_steps": 2,
            "diffusion_samples": 1,
            "max_parallel_samples": None,
            "write_confidence_summary": True,
            "write_full_pae": True,
            "write_full_pde": True,
        },
        "steering_args": asdict(BoltzSteeringParams()),
    }


def affinity_hparams() -> dict:
    """The tiny affinity model: the structure model plus the two-member affinity ensemble.

    The released `boltz2_aff.ckpt` is an ensemble (its JSON has `affinity_pred_value1` and
    `...2`), so this one is too. Confidence stays on: the affinity head picks the diffusion
    sample with the best ipTM. The CLI's second pass also forces `affinity_mw_correction`.
    """
    affinity_args = {
        "num_dist_bins": NUM_BINS,
        "max_dist": 22,
        "pairformer_args": {"num_blocks": 1, "dropout": 0.0},
        # Only `token_s` is used (the width of the heads' MLP); the rest is read but unused.
        "transformer_args": {
            "token_s": TOKEN_S,
            "num_blocks": 1,
            "num_heads": 1,
            "activation_checkpointing": False,
        },
    }
    return {
        **structure_hparams(),
        "affinity_prediction": True,
        "affinity_ensemble": True,
        "affinity_mw_correction": True,
        "affinity_model_args1": copy.deepcopy(affinity_args),
        "affinity_model_args2": copy.deepcopy(affinity_args),
    }


def write_checkpoint(path: Path, hparams: dict, *, seed: int = 0) -> Path:
    """Initialise `Boltz2(**hparams)` from `seed` and save it as a Lightning checkpoint.

    `load_from_checkpoint` needs `state_dict`, `hyper_parameters` and the Lightning version
    (its checkpoint migration reads it). The global random states are left as they were.
    """
    import pytorch_lightning
    import torch
    from boltz.model.models.boltz2 import Boltz2

    with _seeded(seed):
        model = Boltz2(**hparams)
        # boltz zero-initialises the last projection of many blocks (a fresh model starts
        # each as the identity), so a random model's structure would ignore its inputs: MSA,
        # template and constraints alike. Small random weights there let each input move it.
        for parameter in model.parameters():
            if parameter.dim() > 1 and not parameter.detach().any():
                torch.nn.init.normal_(parameter, std=0.02)
    checkpoint = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": pytorch_lightning.__version__,
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
    }
    return _write_atomically(Path(path), lambda f: torch.save(checkpoint, f))


# --- The molecules -------------------------------------------------------------------------


def write_mols(mol_dir: Path, *, nucleotides: bool = True) -> Path:
    """Write `mol_dir/<CODE>.pkl` for the 21 protein tokens (and the 10 nucleotide tokens),
    and for the designs' molecules (DESIGN_MOLECULES: the linker SEZ, GLYCO_RESIDUE).

    boltz builds every polymer residue from these: `load_canonicals` reads the 21 protein
    ones for every input, and DNA/RNA residues are read by name when a chain has them. Each
    is an RDKit Mol of the heavy atoms, atom property `name` as in `const.ref_atoms`,
    `leaving_atom` "1" on OXT / OP3 and "0" elsewhere, and one ETKDG conformer (the
    featurizer's reference positions), pickled with all properties. Existing files are kept,
    so a cache written before a molecule was added here gains it on the next call.
    """
    from boltz.data import const
    from rdkit import Chem

    mol_dir = Path(mol_dir)
    mol_dir.mkdir(parents=True, exist_ok=True)
    specs = {code: (letter, _PEPTIDE) for letter, code in PROTEIN_RESIDUES.items()}
    specs["UNK"] = UNKNOWN_RESIDUES["UNK"]
    if nucleotides:
        specs.update({code: (letter, _RNA_5P) for letter, code in RNA_RESIDUES.items()})
        specs.update({code: (letter, _DNA_5P) for letter, code in DNA_RESIDUES.items()})
        specs["N"] = UNKNOWN_RESIDUES["N"]
        specs["DN"] = UNKNOWN_RESIDUES["DN"]

    # Atom properties survive pickling only when RDKit is told to keep them (boltz.main
    # sets the same default before it pickles the ligands it parses).
    previous = Chem.GetDefaultPickleProperties()
    Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
    try:
        for code, (letter, flavor) in specs.items():
            path = mol_dir / f"{code}.pkl"
            if path.exists():
                continue
            mol = residue_mol(letter, flavor, keep=set(const.ref_atoms[code]) | LEAVING_ATOMS)
            _write_atomically(path, lambda f, mol=mol: pickle.dump(mol, f))
        for code, (smiles, names, leaving) in DESIGN_MOLECULES.items():
            path = mol_dir / f"{code}.pkl"
            if path.exists():
                continue
            mol = named_mol(smiles, names, leaving=set(leaving))
            _write_atomically(path, lambda f, mol=mol: pickle.dump(mol, f))
    finally:
        Chem.SetDefaultPickleProperties(previous)
    return mol_dir


def residue_mol(letter: str, flavor: int, *, keep: set[str]):
    """One residue as boltz's `mols/` hold it, built by RDKit's `MolFromSequence`.

    Atoms whose PDB name is not in `keep` are cut away (the base of the unknown nucleotides);
    the conformer is embedded with hydrogens for a sensible geometry, which are then removed.
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.RWMol(Chem.MolFromSequence(letter, flavor=flavor))
    for atom in mol.GetAtoms():
        name = atom.GetPDBResidueInfo().GetName().strip()
        atom.SetProp("name", name)
        atom.SetProp("leaving_atom", "1" if name in LEAVING_ATOMS else "0")
    for atom in sorted(mol.GetAtoms(), key=lambda a: -a.GetIdx()):
        if atom.GetProp("name") not in keep:
            mol.RemoveAtom(atom.GetIdx())
    mol = mol.GetMol()
    Chem.SanitizeMol(mol)

    params = AllChem.ETKDGv3()
    params.randomSeed = CONFORMER_SEED
    params.numThreads = 1
    with_h = Chem.AddHs(mol)
    if AllChem.EmbedMolecule(with_h, params) != 0:
        msg = f"RDKit could not embed a conformer for {letter!r} (flavor {flavor})"
        raise RuntimeError(msg)
    return Chem.RemoveHs(with_h)


def named_mol(smiles: str, names: tuple[str, ...], *, leaving: set[str] = frozenset()):
    """A molecule as boltz's `mols/` hold it, from a SMILES whose heavy atoms get `names` in
    order: atom properties `name` and `leaving_atom`, the leaving atoms moved last (as the CCD
    lists them), one ETKDG conformer embedded with hydrogens, which are then removed."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() != len(names) or len(set(names)) != len(names):
        msg = f"{smiles!r} needs one unique name per heavy atom, not {names}"
        raise ValueError(msg)
    for atom, name in zip(mol.GetAtoms(), names, strict=True):
        atom.SetProp("name", name)
        atom.SetProp("leaving_atom", "1" if name in leaving else "0")
    order = sorted(range(len(names)), key=lambda i: names[i] in leaving)  # stable
    mol = Chem.RenumberAtoms(mol, order)

    params = AllChem.ETKDGv3()
    params.randomSeed = CONFORMER_SEED
    params.numThreads = 1
    with_h = Chem.AddHs(mol)
    if AllChem.EmbedMolecule(with_h, params) != 0:
        msg = f"RDKit could not embed a conformer for {smiles!r}"
        raise RuntimeError(msg)
    return Chem.RemoveHs(with_h)


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed torch, NumPy and `random` for the block, then restore their global states.

    Boltz's initialisers draw from both torch and NumPy (`initialize.trunc_normal_init_` calls
    SciPy's `truncnorm.rvs`, which uses NumPy's global generator), so seeding torch alone does
    not give the same weights twice.
    """
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)  # the global generator, which SciPy draws from
            random.seed(seed)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _write_atomically(path: Path, write) -> Path:
    """Call `write(file)` on a temporary file beside `path`, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the rest of the cache is not
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


AFFINITY_ALONE = """
import json, os, sys
from dataclasses import asdict
from pathlib import Path

import torch
from boltz.data.module.inferencev2 import Boltz2InferenceDataModule
from boltz.data.types import Manifest
from boltz.data.write.writer import BoltzAffinityWriter
from boltz.main import (
    Boltz2DiffusionParams, BoltzSteeringParams, MSAModuleArgs, PairformerArgsV2,
)
from boltz.model.models.boltz2 import Boltz2
from pytorch_lightning import Trainer, seed_everything
from rdkit import Chem

args = json.loads(sys.argv[1])
work, mols = Path(args["work"]), Path(args["cache"]) / "mols"
processed = work / "processed"
torch.set_grad_enabled(False)
torch.set_float32_matmul_precision("highest")
Chem.SetDefaultPickleProperties(Chem.PropertyPickleOptions.AllProps)
seed_everything(args["seed"])
diffusion = Boltz2DiffusionParams()
diffusion.step_scale = 1.5
steering = BoltzSteeringParams()
steering.fk_steering = steering.physical_guidance_update = steering.contact_guidance_update = False
present = lambda name: processed / name if (processed / name).exists() else None
trainer = Trainer(default_root_dir=work, strategy="auto", accelerator="cpu", devices=1,
                  precision="bf16-mixed", callbacks=[BoltzAffinityWriter(
                      data_dir=processed / "structures", output_dir=work / "predictions")])
data = Boltz2InferenceDataModule(
    manifest=Manifest.load(processed / "manifest.json"), target_dir=work / "predictions",
    msa_dir=processed / "msa", mol_dir=mols, num_workers=0,
    constraints_dir=present("constraints"), template_dir=present("templates"),
    extra_mols_dir=present("mols"), override_method="other", affinity=True)
model = Boltz2.load_from_checkpoint(
    args["checkpoint"], strict=True, map_location="cpu",
    predict_args={"recycling_steps": 5, "sampling_steps": args["sampling_steps"],
                  "diffusion_samples": args["diffusion_samples"], "max_parallel_samples": 1,
                  "write_confidence_summary": False, "write_full_pae": False,
                  "write_full_pde": False},
    diffusion_process_args=asdict(diffusion), ema=False,
    pairformer_args=asdict(PairformerArgsV2()),
    msa_args=asdict(MSAModuleArgs(subsample_msa=False, num_subsampled_msa=1024,
                                  use_paired_feature=True)),
    steering_args=asdict(steering), affinity_mw_correction=args["mw_correction"])
model.eval()
trainer.predict(model, datamodule=data, return_predictions=False)
"""


def boltz_affinity_alone(
    cache: dict,
    work: Path,
    *,
    seed: int,
    sampling_steps: int,
    diffusion_samples: int,
    mw_correction: bool = False,
) -> None:
    """boltz's affinity pass alone, as `boltz predict` runs it after its structure pass (the
    same calls, in a fresh process seeded just before the affinity model's load): on
    `work/processed` (boltz's preparation of the input) and
    `work/predictions/<id>/pre_affinity_<id>.npz`; it writes `affinity_<id>.json` beside it."""
    import json

    arguments = {
        "work": str(work),
        "cache": str(cache["cache"]),
        "checkpoint": str(cache["affinity_checkpoint"]),
        "seed": seed,
        "sampling_steps": sampling_steps,
        "diffusion_samples": diffusion_samples,
        "mw_correction": mw_correction,
    }
    subprocess.run(
        [sys.executable, "-c", AFFINITY_ALONE, json.dumps(arguments)],
        check=True,
        capture_output=True,
        timeout=600,
    )
