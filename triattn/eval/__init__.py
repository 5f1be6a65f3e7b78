"""Long-context evaluation: tasks of the RULER kind (tasks.py), their runs (run.py), tables and plot (report.py)."""
