"""Everything that talks to OpenVINO: loading and instrumenting a model (model, instrument),
OpenVINO GenAI's pipeline (genai), exporting and building models (export, tiny), per-model settings."""
from . import runners  # noqa: F401,E402  (passes the GenAI runner and the query model in to core)
