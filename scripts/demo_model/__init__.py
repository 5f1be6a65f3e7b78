"""Build the bundled demo model: a small gpt-oss-family LLM trained on the Python standard library.

Not part of the runtime package (it needs PyTorch): run from the repository root.
`prepare` selects the corpus, trains the tokenizer and writes token arrays plus the model config;
`train` is a standalone PyTorch trainer (it runs on a GPU machine without this package);
`export` turns its weights into the OpenVINO IR shipped in `assets/demo-model/`.
"""
