"""make-tiny-model: a random-weight model exported offline to OpenVINO IR, for tests and benchmarks."""


def add_parser(sub):
    p = sub.add_parser("make-tiny-model", help="build a random-weight OpenVINO LLM offline",
                       description="Random weights from a transformers config, a BPE tokenizer trained on the "
                                   "shipped text, exported with optimum-intel. Deterministic for a seed.")
    p.add_argument("out", help="output directory")
    p.add_argument("--arch", choices=["gpt-oss", "llama"], default="gpt-oss")
    p.add_argument("--preset", choices=["tiny", "bench", "real-dims"], default="tiny",
                   help="tiny: a few M parameters (tests); bench: ~300M parameters (performance); real-dims "
                        "(gpt-oss only): gpt-oss-20b's widths and vocabulary with 4 layers and 4 experts, int4 as "
                        "the hub export (1.7B parameters; the build needs about 15 GB of memory)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(command="make-tiny-model")
    return "make-tiny-model"


def run(args):
    from ..openvino.tiny import make_tiny_model
    out = make_tiny_model(args.out, args.arch, args.preset, args.seed)
    print(out)
