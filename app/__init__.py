"""Stratum: customer classification as a service."""

import os

# One BLAS thread, set before NumPy loads its BLAS (every entry point imports this package
# first; an operator's own setting wins). The engine's matrix products are small: waking
# OpenBLAS's threads for them cost more than it saved (a BG/NBD fit took five times as
# long with them on two cores), they competed with PostgreSQL and the other workers for
# the cores, and a product split over threads may add up in another order, where one
# thread gives the same bytes on every machine.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
