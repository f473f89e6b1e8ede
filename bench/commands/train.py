"""``bench train``: one GAN, one run directory."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.errors import UsageError


def _key_value(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    try:
        return key.replace("-", "_"), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' in '{text}' is not a number") from None


# --reg NAME=VALUE: regularizers any loss can switch on, mapped onto TrainConfig fields.
REGULARIZERS = {
    "r1": "r1_gamma",  # R1 penalty weight gamma (Mescheder 2018)
    "r2": "r2_gamma",  # R2 penalty weight gamma (Mescheder 2018: R1 on generated samples)
    "noise": "noise_std",  # instance noise std, annealed to 0 (Arjovsky & Bottou 2017)
    "noise_anneal": "noise_anneal_steps",  # step at which the noise reaches 0 (default: last step)
    "label_smoothing": None,  # one-sided label smoothing (Salimans 2016): a loss parameter
    "fake_label_smoothing": None,  # its two-sided form: the fake target moves to this value (a loss parameter)
    "fm": "feature_matching",  # feature matching weight (Salimans 2016), added to G's objective
    "fm_layer": "fm_layer",  # its layer: D's k-th weight layer from the end (default 1)
    "fm_alone": "fm_alone",  # 1: feature matching is G's whole objective
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    import losses
    import models
    from bench.metrics import registry

    p = sub.add_parser(
        "train", help="train one GAN (resumes when --out holds the same run)",
        description="Train one GAN and write config.json, metrics.jsonl, checkpoints/ and record.json into --out. "
        "Running it again with the same --out resumes from the last checkpoint, bit for bit. "
        "Unset hyperparameters take the loss's published defaults (Lucic et al. 2018).",
    )
    p.add_argument("--dataset", default="ring8", help="a dataset name (`bench list datasets`; default ring8)")
    p.add_argument("--loss", default="ns", help=f"one of {', '.join(losses.names())} (default ns)")
    p.add_argument("--arch", help=f"one of {', '.join(models.names())} (default mlp for 2-D data, infogan for images)")
    p.add_argument("--steps", type=int, default=2000, help="generator steps (default 2000)")
    p.add_argument("--out", required=True, help="run directory (created; resumed if it holds this run)")
    p.add_argument("--lr", type=float, help="Adam learning rate for G and D (default: the loss's)")
    p.add_argument("--lr-d", type=float, help="D's own Adam learning rate, the two time-scale update rule "
                   "(TTUR, Heusel et al. 2017; default: --lr)")
    p.add_argument("--beta1", type=float, help="Adam beta1 (default: the loss's)")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default 0.999)")
    p.add_argument("--n-disc", type=int, help="D steps per G step (default: the loss's)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default 64)")
    p.add_argument("--z-dim", type=int, default=64, help="latent dimension (default 64)")
    p.add_argument("--z-dist", default="uniform", help="latent prior: uniform (U(-1,1), Lucic) or normal")
    p.add_argument("--norm", dest="d_norm", help=f"D normalization: {', '.join(models.NORMS)} (default: the loss's)")
    p.add_argument("--unrolled", dest="unrolled_steps", type=int, default=0, metavar="K",
                   help="unrolled GAN (Metz et al. 2017): G's objective sees D after K differentiable Adam steps "
                        "(default 0: off)")
    p.add_argument("--g-norm", default="batch", choices=models.G_NORMS,
                   help="G's normalization: its batch norm (default), or reference / virtual batch norm "
                        "(Salimans et al. 2016: statistics from a fixed reference batch)")
    p.add_argument("--conditional", action="store_true",
                   help="class-conditional G and D on labelled data (digits, stacked-digits): conditional batch norm "
                        "in G, a projection discriminator (Miyato & Koyama 2018)")
    p.add_argument("--d-minibatch", default="none", choices=models.MINIBATCH,
                   help="a D layer comparing each sample with its batch: stddev (Karras et al. 2018) or "
                        "discrimination (minibatch discrimination, Salimans et al. 2016); default none")
    p.add_argument("--loss-param", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                   help="a loss's own hyperparameter, repeatable (`bench list losses` shows each loss's parameters)")
    p.add_argument("--reg", action="append", type=_key_value, default=[], metavar="NAME=VALUE",
                   help="regularizer, repeatable: r1=GAMMA, r2=GAMMA, noise=STD, noise_anneal=STEPS, label_smoothing=S, "
                        "fake_label_smoothing=F, fm=WEIGHT (feature matching), fm_layer=K, fm_alone=1")
    p.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    p.add_argument("--resolution", type=int, help="image size (default: the dataset's native size)")
    p.add_argument("--data-root", help="where real datasets live (default $GAN_BENCH_DATA or ./data)")
    p.add_argument("--log-every", type=int, default=100, help="log losses every N steps (default 100)")
    p.add_argument("--ckpt-every", type=int, default=500, help="checkpoint every N steps (default 500)")
    p.add_argument("--health-every", type=int, default=10,
                   help="measure training health (bench.health) every N steps (default 10; every step with --cuda-graphs); "
                        "never changes the training")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--precision", default="fp32",
                   help="fp32 (default) or bf16: torch.autocast to bfloat16 around the forward passes, CUDA only; "
                   "part of the run's identity")
    p.add_argument("--compile", action="store_true",
                   help="run G and D through torch.compile (off by default; not part of the run's identity: a run "
                   "may be resumed with or without it)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="capture the whole training step once as a CUDA graph and replay it: one launch per step "
                   "instead of hundreds (CUDA only; not part of the run's identity)")
    p.add_argument("--metrics", help=f"score every checkpoint into scores.jsonl: comma-separated {','.join(registry.metric_names())} "
                   "or 'default' (the dataset's); default: no scoring")
    p.add_argument("--eval-samples", type=int, help="samples per score (default: the metrics' default, e.g. 10,000)")
    p.add_argument("--feature-extractor", help=f"{', '.join(registry.extractor_names())} (default: the dataset's)")
    p.add_argument("--fe-weights", metavar="PATH", help="feature-extractor weights file (Inception)")
    p.add_argument("--json", action="store_true", help="print the run record as JSON")
    p.set_defaults(func=run)


def _reg_value(name: str, value: float) -> float | int | bool:
    """--reg values arrive as numbers: step counts and layer indices are integers, fm_alone a switch."""
    if name in ("noise_anneal", "fm_layer"):
        if value != int(value):
            raise UsageError(f"--reg {name} must be an integer, got {value:g}")
        return int(value)
    if name == "fm_alone":
        if value not in (0, 1):
            raise UsageError(f"--reg fm_alone must be 0 or 1, got {value:g}")
        return bool(value)
    return value


def _train_config(args: argparse.Namespace):
    from bench.config import TrainConfig

    from bench import plugins
    from bench.study import default_arch

    loss_params = dict(args.loss_param)
    fields: dict = {}
    for name, value in args.reg:
        if name not in REGULARIZERS:
            raise UsageError(f"unknown regularizer '{name}'; known: {', '.join(REGULARIZERS)}")
        if REGULARIZERS[name] is None:
            loss_params[name] = value
        else:
            fields[REGULARIZERS[name]] = _reg_value(name, value)
    return TrainConfig(
        dataset=args.dataset, loss=args.loss, arch=args.arch or default_arch(args.dataset), steps=args.steps, batch_size=args.batch_size,
        z_dim=args.z_dim, z_dist=args.z_dist, lr=args.lr, lr_d=args.lr_d, beta1=args.beta1, beta2=args.beta2, n_disc=args.n_disc,
        d_norm=args.d_norm, d_minibatch=args.d_minibatch, g_norm=args.g_norm, conditional=args.conditional, unrolled_steps=args.unrolled_steps, loss_params=loss_params, seed=args.seed, resolution=args.resolution,
        data_root=args.data_root, log_every=args.log_every, ckpt_every=args.ckpt_every,
        health_every=args.health_every, device=args.device,
        precision=args.precision, compile=args.compile, cuda_graphs=args.cuda_graphs,
        metrics=[m.strip() for m in (args.metrics or "").split(",") if m.strip()], eval_samples=args.eval_samples,
        feature_extractor=args.feature_extractor, fe_weights=args.fe_weights, plugins=plugins.records(), **fields,
    )


def check_out_parent(out: Path) -> None:
    """Refuse an --out below a file (its directory could never be made), before anything is done."""
    from bench.io import file_in_the_way

    if (p := file_in_the_way(out)) is not None:
        raise UsageError(f"--out {out}: {p} is a file, not a directory; choose an --out in a directory")


def execute(args: argparse.Namespace):
    """Train (or resume) the run the flags describe; returns its ``RunResult``."""
    from bench.train import train

    check_out_parent(args.out)
    return train(_train_config(args), args.out)


def run(args: argparse.Namespace) -> int:
    result = execute(args)
    if args.json:
        print(json.dumps(result.to_dict(), sort_keys=True))
    else:
        last = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in result.last.items())
        where = f" (diverged at step {result.diverged_at})" if result.diverged_at else ""
        print(f"{result.status}{where}: step {result.step}/{result.steps} in {result.wall_s:.1f} s; {last}")
        print(f"run directory: {args.out}")
    return 0

