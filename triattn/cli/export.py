"""export: download an OpenVINO IR from the model hub, or convert a transformers checkpoint."""
import sys


def add_parser(sub):
    p = sub.add_parser("export", help="download or convert a model to an OpenVINO LLM export",
                       description="If the hub repository holds an OpenVINO IR (openvino_model.xml) it is "
                                   "downloaded; otherwise the transformers checkpoint is converted with "
                                   "optimum-intel (stateful, text-generation-with-past).")
    p.add_argument("--model-id", default="OpenVINO/gpt-oss-20b-int4-ov",
                   help="hub id (default: the model card's base model, OpenVINO/gpt-oss-20b-int4-ov)")
    p.add_argument("--output-dir", required=True, help="where the export goes (new or empty folder)")
    p.add_argument("--weight-format", choices=["int4", "int8", "fp16"], default="int4",
                   help="weights of a converted checkpoint (default int4; a downloaded IR is kept as is)")
    return "export"


def run(args):
    from ..openvino.export import export_model
    out, how = export_model(args.model_id, args.output_dir, args.weight_format)
    print(f"{how} {args.model_id} -> {out}", file=sys.stderr)
    print(out)
    return 0
