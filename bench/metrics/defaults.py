"""The one table of metric defaults, shared by the API (``bench.metrics.score``) and ``bench score``.

Sample counts follow Lucic et al. 2018: 10,000 generated vs 10,000 real (test split) images; 10,000
points for 2-D mixtures; all 1,797 images for digits (which has no held-out split); 26,000 for
stacked-digits (the count of Metz et al. 2017, VEEGAN and PacGAN, at which its modes are counted).
``n`` / ``--samples`` overrides the generated count; the real count is ``min(n, size of the real split)``.
"""
from __future__ import annotations

DEFAULTS: dict = {
    # sample counts
    "samples": {"points": 10_000, "images": 10_000, "digits": 1_797, "stacked-digits": 26_000},
    "split": "test",                 # Lucic: the test split is the reference
    "seed": 0,                       # seed of the latent draws (a dedicated torch.Generator)
    "gen_batch_size": 500,           # latents per generator call
    "fe_batch_size": 64,             # images per feature-extractor call (torch-fidelity's default)
    # default metrics by data kind ("modes" is added where modes are defined: MODE_DATASETS). KID is
    # opt-in for 2-D points: its cubic kernel matches moments up to the third only, so it cannot tell
    # a moment-matched blob from the mixture (a Gaussian with ring8's moments: KID 0.009 +- 0.067)
    "metrics": {"points": ("w1", "fid", "prc", "dc", "modes"), "images": ("fid", "kid", "prc", "dc", "is")},
    # the metric a dataset's leaderboard ranks by (see PRIMARY)
    "primary": {"points": "w1", "images": "fid"},
    # default extractor by data kind (digits and stacked-digits have their own)
    "extractor": {"points": "identity", "images": "inception-v3-compat", "digits": "digits-cnn",
                  "stacked-digits": "digits-cnn-channels"},
    # metric parameters
    "kid_subset_size": 1000,         # capped at min(n_generated, n_real); the value used is recorded
    "kid_subsets": 100,
    "prc_k": 3,                      # Kynkaanniemi et al. 2019
    "dc_k": 5,                       # Naeem et al. 2020
    "is_splits": 10,                 # Salimans et al. 2016; capped at n_generated
    "rng_seed": 2020,                # torch-fidelity's seed for KID subsets and IS shuffling
    "mode_min_fraction": 0.01,       # a mode counts when >= 1% of samples fall in it
    "mode_radius_std": 3.0,          # "in a mode" = within 3 std of its centre
    "w1_samples": 1000,              # exact W1 on the first 1,000 generated vs 1,000 real points (O(n^3))
}

# Datasets with mode metrics: 2-D mixtures (known centres), digits and stacked-digits (classes of each
# channel, by digits-cnn).
MODE_DATASETS = ("ring8", "grid25", "digits", "stacked-digits")


def primary_metric(dataset: str, kind: str) -> str:
    """The score key a dataset's leaderboard ranks by, and studies select configurations by.

    It must see what the data is about. Point data: exact W1 (``bench.metrics.wasserstein``), a
    consistent distance (zero only for equal distributions); FID on raw points compares only means
    and covariances, so a Gaussian blob with ring8's moments scores FID 0.001 and covers no mode.
    Images: FID on the dataset's extractor (Lucic et al. 2018). Orientation comes from the metric's
    registration (``registry.lower_is_better``).
    """
    return DEFAULTS["primary"][kind]


def default_samples(dataset: str, kind: str) -> int:
    return DEFAULTS["samples"].get(dataset, DEFAULTS["samples"][kind])


def default_extractor(dataset: str, kind: str) -> str:
    return DEFAULTS["extractor"].get(dataset, DEFAULTS["extractor"][kind])


def default_metrics(dataset: str, kind: str) -> list[str]:
    names = [m for m in DEFAULTS["metrics"][kind] if m != "modes"]
    return names + ["modes"] if dataset in MODE_DATASETS else names
