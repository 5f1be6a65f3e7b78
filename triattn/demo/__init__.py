"""The bundled demo model: a small gpt-oss-family LLM trained on the Python standard library.

`prepare` selects the corpus, trains the tokenizer and writes token arrays plus the model config;
`train` is a standalone PyTorch trainer (it runs on a GPU machine without this package);
`export` turns its weights into the OpenVINO IR shipped in `assets/demo-model/`.
"""
