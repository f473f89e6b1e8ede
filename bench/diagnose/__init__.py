"""Why a loss fails, measured (issue 16).

- ``gradients``: Arjovsky & Bottou's experiment (2017, "Towards Principled Methods for Training
  GANs", Fig. 2): G frozen at a checkpoint, a fresh D trained toward optimality, and every loss's
  generator gradient measured along the way.
- ``divergences``: JS and W1 between two Gaussians pulled apart, computed exactly (the picture that
  motivates WGAN: Arjovsky et al. 2017, Fig. 1).
- ``figures``: their figures (PNG bytes).

``bench diagnose`` (bench/commands/diagnose.py) runs them.
"""
