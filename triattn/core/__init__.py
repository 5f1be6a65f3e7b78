"""The core, on NumPy arrays only: settings, the decode loop (engine), the host token store,
selection, eviction mechanisms, the run interface (runner) and its one streaming path (runs),
quality measures and the comparison table. Nothing here imports OpenVINO."""
