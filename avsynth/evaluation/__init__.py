"""Evaluation: the official AVSBench metrics (:mod:`~avsynth.evaluation.metrics`, torchmetrics
``Metric`` classes and their functional forms) and the one evaluation loop
(:mod:`~avsynth.evaluation.evaluate`: samples → :class:`avsynth.modeling.predictor.AVPredictor` →
:class:`~avsynth.evaluation.metrics.AVSBenchMetric`). Below training: it never imports it."""
