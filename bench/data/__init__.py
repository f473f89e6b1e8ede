"""Implementation of :mod:`bench.datasets` (import that module, not this package).

- ``core``: the ``Dataset`` record, the name registry, ``get``/``names``, roots and the on-disk cache.
- ``synthetic``: datasets made here: the 2-D mixtures ``ring8``/``grid25``, ``digits`` (scikit-learn's
  bundled 8x8 digits) and Lucic et al.'s anti-aliased triangles ``polygons``.
- ``files``: datasets read from local files: ``mnist``, ``fashion-mnist``, ``cifar10``, ``celeba``,
  ``folder:PATH``. Nothing is ever downloaded.
"""
