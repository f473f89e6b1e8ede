"""The one table of metric parameters, shared by the API (``bench.metrics.score``) and ``bench score``.

What depends on the dataset (sample count, default metrics and extractor, primary metric, mode
definition) is part of its registration (``bench.datasets.describe(name)``, ``bench.data.registry``):
Lucic et al. 2018's 10,000 generated vs 10,000 real (test split) images, 10,000 points for 2-D
mixtures, all 1,797 images for digits (which has no held-out split), 26,000 for stacked-digits (the
count of Metz et al. 2017, VEEGAN and PacGAN, at which its modes are counted). ``n`` / ``--samples``
overrides the generated count; the real count is ``min(n, size of the real split)``.
"""
from __future__ import annotations

DEFAULTS: dict = {
    "split": "test",                 # Lucic: the test split is the reference
    "seed": 0,                       # seed of the latent draws (a dedicated torch.Generator)
    "gen_batch_size": 500,           # latents per generator call
    "fe_batch_size": 64,             # images per feature-extractor call (torch-fidelity's default)
    "kid_subset_size": 1000,         # capped at min(n_generated, n_real); the value used is recorded
    "kid_subsets": 100,
    "prc_k": 3,                      # Kynkaanniemi et al. 2019
    "dc_k": 5,                       # Naeem et al. 2020
    "is_splits": 10,                 # Salimans et al. 2016; capped at n_generated
    "rng_seed": 2020,                # torch-fidelity's seed for KID subsets and IS shuffling
    "w1_samples": 1000,              # exact W1 on the first 1,000 generated vs 1,000 real points (O(n^3))
}
