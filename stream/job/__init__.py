"""The daily job (`creative-select stats-job`): the cut, the recomputation and its
parallel readers, corrections, the parameter snapshot and the run's report."""
