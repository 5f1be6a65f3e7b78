"""Everything that talks to OpenVINO: loading and instrumenting a model (model, instrument),
OpenVINO GenAI's pipeline (genai), exporting and building models (export, tiny), per-model settings."""
