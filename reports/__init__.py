"""Statistics and leaderboards for ``bench report`` (Lucic et al. 2018's question: does any loss
consistently beat the non-saturating GAN?).

Pure statistics (DataFrame in, DataFrame out; no files, no plots): ``metrics`` (value per trial,
orientation, diverged = worst), ``budget`` (expected best of k configs, bootstrap bands, permutation
test), ``seeds`` (median, IQM, Mann-Whitney, probability of improvement, min_p and seeds needed),
``verdicts`` (Holm, inconclusive, headline), ``ranks`` (Friedman, Nemenyi, critical difference,
pairwise Wilcoxon signed-rank), ``analysis`` (all of it for a report).
Input and output: ``load`` (study directories and results files), ``tables``, ``leaderboard``
(Markdown), ``html``, ``plots``, ``samples`` (grids from checkpoints), ``output`` (the report folder).
"""
