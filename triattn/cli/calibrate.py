"""calibrate: measure the query statistics the triattention policy scores with."""
import sys

from .common import add_model_args, positive_int


def add_parser(sub):
    from ..core.calibration import DEFAULT_MAX_TOKENS, DEFAULT_TEXT, FILENAME
    p = sub.add_parser("calibrate", help="measure query statistics for the triattention policy",
                       description="Run the model over plain text, un-rotate its queries and store, per layer, "
                                   "query head and RoPE band, the mean E[q_f] and mean magnitude E|q_f| of the "
                                   f"pre-RoPE queries. Saved beside the model as {FILENAME} (or under "
                                   "~/.cache/triattn/calibration/ when the model directory is read-only).")
    add_model_args(p)
    p.add_argument("--text", default=None, help=f"plain-text file (default: {DEFAULT_TEXT.name}, shipped)")
    p.add_argument("--max-tokens", type=positive_int, default=DEFAULT_MAX_TOKENS,
                   help=f"tokens of text to run, capped at the model's context (default {DEFAULT_MAX_TOKENS})")
    p.add_argument("--output", default=None, help="where to write the .npz file (default: see above)")
    return "calibrate"


def run(args):
    from ..core.calibration import calibrate
    from ..openvino.tiny import default_model_dir
    note = lambda m: print(m, file=sys.stderr)  # noqa: E731
    model_dir = args.model_dir or default_model_dir(note)
    cal, path = calibrate(model_dir, args.text, args.max_tokens, args.output, args.device, args.precision)
    print(f"{path}  ({cal.meta['tokens']} tokens, {cal.q_mean.shape[0]} layers x {cal.q_mean.shape[1]} "
          f"query heads x {cal.q_mean.shape[2]} bands)")
