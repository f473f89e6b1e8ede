"""``bench run``: a study (Lucic et al. 2018 protocol) on Ray Tune; ``bench resume``; ``bench status``."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.errors import UsageError


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


# Trials packed on one GPU when --gpus-per-trial is auto (or not given and torch sees a GPU): measured with
# benchmarks/packing.py on an NVIDIA H100 80GB HBM3 (bf16, ns, batch 64, 2026-11-23). infogan at 64 px:
# aggregate steps/s 1.99x with 2 trials, 2.89x with 4, 2.87x with 8 -> 4 per GPU. At 32 px: 1.92x, 3.72x,
# 5.12x -> 8 per GPU (also used below 32 px: smaller nets, not measured separately).
# Arch/size pairs not measured run one trial per GPU; 2-D point data trains on CPUs (0 GPUs), as without a GPU.
PACKING = {("infogan", 32): 8, ("infogan", 64): 4}
# With --cuda-graphs one trial keeps the GPU busy (benchmarks/packing.py --cuda-graphs, same H100, bf16, ns):
# 2 / 4 / 8 graphed infogan trials per GPU gave 1.06x / 1.02x / 1.03x the steps/s of one at 32 px and
# 0.97x / 1.00x / 0.96x at 64 px, and one graphed trial alone is 6.11x / 3.09x one eager trial
# (benchmarks/overhead.py --cuda-graphs, same run), more than the best eager packing (5.12x / 2.89x).
# So graphed image trials get a GPU each.


def auto_gpus_per_trial(study, info) -> float:
    """GPUs per trial from PACKING for the study's cells (one GPU per image trial with CUDA graphs); the
    largest share any cell needs."""
    from bench.study import cells

    shares = []
    for cell in cells(study):
        d = info[cell.dataset]
        if d.spec.kind == "points":
            shares.append(0.0)
            continue
        if study.base.get("cuda_graphs"):
            shares.append(1.0)
            continue
        side = max(d.spec.shape[1:])
        fits = [k for k in PACKING if k[0] == cell.arch and side <= k[1]]
        shares.append(1.0 / PACKING[min(fits, key=lambda k: k[1])] if fits else 1.0)
    return max(shares, default=0.0)


def _gpus(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, got '{text}'") from None


def _add_resources(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs each trial reserves (default 1)")
    p.add_argument("--gpus-per-trial", type=_gpus,
                   help="GPUs each trial reserves; fractions pack several trials on one GPU; auto: the measured "
                   "packing for the study's arch and image size (infogan: 1/8 up to 32 px, 1/4 up to 64 px; 1 when "
                   "not measured; 0 for 2-D data). Default: auto when this machine has a CUDA GPU, else 0 "
                   "(with --address, give it explicitly)")
    p.add_argument("--max-concurrent", type=int, help="at most this many trials at once (default: as resources allow)")
    p.add_argument("--address", default=os.environ.get("RAY_ADDRESS"),
                   help="join the Ray cluster at HOST:PORT (started with `ray start --head`); default: a private local Ray "
                   "(env RAY_ADDRESS)")
    p.add_argument("--verbose", action="store_true", help="show Ray's own output")


def add_parser(sub: argparse._SubParsersAction) -> None:
    import losses
    import models
    import sweeps
    from bench.config import PRECISIONS

    from bench.study import EARLY_STOPS, SEARCHES

    p = sub.add_parser(
        "run", help="run a study: datasets x losses x archs, B configs each, then S seeds of the best",
        description="Run a large-scale study in the protocol of Lucic et al. 2018 on Ray Tune. Each cell "
        "(dataset x loss x arch) gets --budget configurations; config 0 is the loss's published defaults "
        "(with the space's fixed entries). "
        "Then the best configuration of each cell is retrained with --seeds new seeds. Results go to "
        "<storage>/<name>/results/ (read it with bench.results.read), one row per finished trial.",
    )
    p.add_argument("--budget", type=int, required=True, help="hyperparameter configurations per cell (Lucic: 100)")
    p.add_argument("--dataset", required=True, help="comma-separated dataset names (`bench list datasets`)")
    p.add_argument("--losses", default="all", help=f"comma-separated or all: {', '.join(losses.names())} (default all)")
    p.add_argument("--tricks", help="comma-separated tricks crossed with every loss, each cell with its own budget "
                   "(e.g. none,feature-matching,unrolled=5,label-smoothing=0.1; join tricks with +; default none: "
                   "the losses alone); `bench report --factor trick --baseline none` compares them")
    p.add_argument("--archs", help=f"comma-separated: {', '.join(models.names())} (default mlp for 2-D data, infogan for images)")
    p.add_argument("--space", help=f"search space: {', '.join(sweeps.builtin_names())} or a TOML/YAML file "
                   "(default: mixtures-2d for 2-D data, lucic-wide for images)")
    p.add_argument("--search", default="random", choices=SEARCHES, help="random (default; the fair comparison) or tpe")
    p.add_argument("--early-stop", default="none", choices=EARLY_STOPS, help="none (default) or asha")
    p.add_argument("--seeds", type=int, default=10, help="seeds for the best config of each cell (default 10; 0 skips)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="generator steps per trial (default: per dataset)")
    length.add_argument("--epochs", type=float, help="epochs per trial (default: Lucic's per dataset)")
    p.add_argument("--eval-every", type=int, help="score every K steps (default: 5 points per trial)")
    p.add_argument("--metrics", help="comma-separated metrics at each evaluation (default: the dataset's)")
    p.add_argument("--samples", type=int, help="generated samples per evaluation (default: the dataset's)")
    p.add_argument("--feature-extractor", help="extractor for the scores (default: the dataset's; see bench score)")
    p.add_argument("--fe-weights", help="extractor weights file, e.g. Inception's (default $GAN_BENCH_INCEPTION_WEIGHTS "
                   "or the torch hub cache); an absolute path every node can read")
    p.add_argument("--data-root", help="where real datasets live (default $GAN_BENCH_DATA or ./data)")
    p.add_argument("--storage", default="studies",
                   help="where studies live (default ./studies): a directory (on a cluster, a path every node shares) or "
                   "s3://BUCKET/PREFIX (nodes need no shared filesystem; trials train in local scratch and upload their "
                   "run directories; endpoint: ?endpoint_override=http://HOST:PORT&scheme=http or env AWS_ENDPOINT_URL; "
                   "credentials: the AWS_* env vars on every node)")
    p.add_argument("--name", help="study name (default: derived from datasets, space, budget and seed)")
    p.add_argument("--seed", type=int, default=0, help="study seed: fixes every config and training seed (default 0)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32 (default) or bf16 autocast around the forward passes (GPU trials only; part of each trial's identity)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="each trial captures its training step once as a CUDA graph and replays it (GPU trials only; "
                   "measured 3-6x the steps/s on an H100; --gpus-per-trial auto then gives each image trial a whole GPU)")
    p.add_argument("--compile", action="store_true", help="run G and D through torch.compile in every trial")
    _add_resources(p)
    p.set_defaults(func=run)

    r = sub.add_parser("resume", help="finish an interrupted study: run exactly the trials its ledger lacks")
    r.add_argument("study_dir", help="the study directory (<storage>/<name>), or its s3://BUCKET/PREFIX/NAME")
    _add_resources(r)
    r.set_defaults(func=resume)

    s = sub.add_parser("status", help="progress of a study per cell")
    s.add_argument("study_dir", help="the study directory (<storage>/<name>), or its s3://BUCKET/PREFIX/NAME")
    s.set_defaults(func=status)


def _study(args: argparse.Namespace):
    import losses
    import sweeps
    from bench import plugins
    from bench.study import Study, default_space

    if args.steps is not None and args.steps < 1:
        raise UsageError(f"--steps must be a positive integer, got {args.steps}")
    names = losses.names() if args.losses == "all" else _names(args.losses)
    datasets_ = _names(args.dataset)
    space = sweeps.load(args.space or default_space(datasets_))
    tricks = _tricks(args.tricks)
    name = args.name or f"{'+'.join(d.replace(':', '_').replace('/', '_') for d in datasets_)}-{space.name}-b{args.budget}-seed{args.seed}"
    if args.name is None and tricks != _tricks(None):  # a crossing is another study than the losses alone
        from bench.study import derive_seed

        name += f"-tricks{derive_seed(tricks) % 10**6:06d}"
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"--name must be a plain directory name, got '{name}'")
    # Absolute paths: Ray trials do not run in the driver's directory.
    base = {"data_root": str(Path(args.data_root).absolute())} if args.data_root else {}
    if args.feature_extractor:
        base["feature_extractor"] = args.feature_extractor
    if args.fe_weights:
        base["fe_weights"] = str(Path(args.fe_weights).absolute())
    if isinstance(args.gpus_per_trial, float) and args.gpus_per_trial > 0:
        base["device"] = "cuda"
    # Hot-path options (bench.train): only what differs from the defaults, so older studies read the same.
    base.update({k: v for k, v in (("precision", args.precision), ("compile", args.compile),
                                   ("cuda_graphs", args.cuda_graphs)) if v not in ("fp32", False)})
    return Study(name=name, datasets=datasets_, losses=names, archs=_names(args.archs) if args.archs else None,
                 tricks=tricks,
                 budget=args.budget, space=space.to_dict(), search=args.search, early_stop=args.early_stop,
                 seeds=args.seeds, steps=args.steps, epochs=args.epochs, eval_every=args.eval_every,
                 metrics=_names(args.metrics) if args.metrics else [], eval_samples=args.samples, seed=args.seed,
                 base=base, plugins=plugins.travel())


def _tricks(text: str | None) -> list[str]:
    """--tricks in canonical spellings (bench.tricks.parse), each once."""
    from bench import tricks

    if text is None:
        return [tricks.NONE]
    out = [tricks.parse(t) for t in text.split(",")]
    twice = sorted({t for t in out if out.count(t) > 1})
    if twice:
        raise UsageError(f"--tricks names {twice[0]} twice (spellings of one trick are the same cell)")
    return out


def check_gpu_options(study) -> None:
    """bf16 and CUDA graphs need trials that run on a GPU: refuse them up front, not as failed rows."""
    if study.base.get("device") == "cuda":
        return
    for key, flag in (("precision", "--precision bf16"), ("cuda_graphs", "--cuda-graphs")):
        if study.base.get(key) not in (None, "fp32", False):
            raise UsageError(f"{flag} needs trials on a GPU, and this study's trials get none (give --gpus-per-trial, "
                             "or use a machine where torch sees a CUDA GPU); run without it")


def _wants_auto(args: argparse.Namespace) -> bool:
    if args.gpus_per_trial is None:
        import torch

        return torch.cuda.is_available()
    return args.gpus_per_trial == "auto"


def _resources(args: argparse.Namespace, gpus: float | None = None):
    """Resources per trial; ``gpus``: --gpus-per-trial already resolved (auto)."""
    from bench.runner import Resources, check_address

    gpus = gpus if gpus is not None else (args.gpus_per_trial if isinstance(args.gpus_per_trial, float) else 0.0)
    if not args.cpus_per_trial > 0:
        raise UsageError(f"--cpus-per-trial must be > 0, got {args.cpus_per_trial}")
    if not gpus >= 0:
        raise UsageError(f"--gpus-per-trial must be >= 0, got {gpus}")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UsageError(f"--max-concurrent must be a positive integer, got {args.max_concurrent}")
    if args.address:
        check_address(args.address)
    return Resources(args.cpus_per_trial, gpus, args.max_concurrent)


def _finish(study_dir, df) -> int:
    """Print the study's status and where its results are (a ``bench.study_dir.StudyDir``)."""
    from bench.run_study import cell_status, load
    print(cell_status(load(study_dir), df).to_string(index=False))
    print(f"results: {study_dir} ({len(df)} rows; in Python: bench.results.read(\"{study_dir}\"))")
    return 0


def run(args: argparse.Namespace) -> int:
    return _finish(*start(args))


def start(args: argparse.Namespace):
    """Create and run the study the flags describe; returns (its StudyDir, its results table)."""
    from bench import run_study
    from bench.storage import new_study_dir

    study = _study(args)
    resources = _resources(args)
    study_dir = new_study_dir(args.storage, study.name)  # an s3:// URI is checked here: scheme, endpoint, bucket
    info = run_study.validate(study)
    if _wants_auto(args):
        resources = _resources(args, auto_gpus_per_trial(study, info))
        if resources.gpus_per_trial > 0:
            study.base["device"] = "cuda"
    check_gpu_options(study)
    run_study.create(study, study_dir)
    return study_dir, run_study.execute(study_dir, resources, args.address, args.verbose)


def resume(args: argparse.Namespace) -> int:
    return _finish(*restart(args))


def restart(args: argparse.Namespace):
    """Run exactly the trials a study's ledger lacks; returns (its StudyDir, its results table)."""
    from bench import run_study
    from bench.storage import study_dir_at

    study_dir = study_dir_at(args.study_dir)
    study = run_study.load(study_dir)
    resources = _resources(args)
    if _wants_auto(args):
        # A study made for CPUs stays on CPUs; one made for a GPU gets the measured packing.
        gpus = auto_gpus_per_trial(study, run_study.data_info(study)) if study.base.get("device") == "cuda" else 0.0
        resources = _resources(args, gpus)
    return study_dir, run_study.execute(study_dir, resources, args.address, args.verbose)


def status(args: argparse.Namespace) -> int:
    from bench.run_study import status_table
    from bench.storage import study_dir_at

    print(status_table(study_dir_at(args.study_dir)).to_string(index=False))
    return 0
