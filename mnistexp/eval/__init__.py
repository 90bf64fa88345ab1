"""Scoring probabilities, pure math on whole arrays: accuracy, NLL, Brier and the calibration
metrics (``metrics``), the calibration-error estimators (``calibration``), fit records
(``fits``), the recalibration maps fitted on validation (``recalibration``), bootstrap
intervals (``bootstrap``), out-of-distribution scores and detection metrics (``ood``) and
selective prediction (``selective``). Nothing here knows about training or run folders.
"""
