"""Measuring: the benchmark plan and its step-interleaved runs, reports, targets, sweeps, soak,
profiling, prune-event timing and the comparison with OpenVINO GenAI's own pipeline."""
