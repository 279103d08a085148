"""Fed-CMP: canonical space construction (CSC), reliability-weighted fusion (RWF) and
orthogonality-preserved momentum (OPM); see :mod:`harness.fedcmp.aggregator`."""
