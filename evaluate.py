"""Evaluate a trained run on its test split, or classify your own images with it.

    python evaluate.py runs/RUN                    # writes runs/RUN/eval/: metrics, confusion matrix, mistakes
    python evaluate.py runs/RUN --data-dir DIR     # on other data with the same classes
    python evaluate.py runs/RUN --tta              # also with test-time augmentation (mirror, 1-pixel shifts)
    python evaluate.py runs/RUN --image cat.jpg    # top-k classes of your own images (any size/format)
    python evaluate.py runs/RUN --export DIR --format onnx   # for serving: DIR/model.onnx (or saved_model/)
    python evaluate.py runs/RUN --export DIR --format timm   # a ViT for timm: DIR/model.safetensors
"""

from harness import backend
from harness.cli import MAX_BATCH, OneLineErrorParser, positive, text
from harness.errors import UserError, cli_main
from harness.reporting.export import FORMATS, check_export
from harness.training.config import EVALUATION_BATCH_SIZE
from harness.training.run_dir import open_finished_run


def build_parser():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=text, help="a run directory written by train.py")
    parser.add_argument("--dataset", type=text, help="evaluate on this dataset instead of the run's own (same classes)")
    parser.add_argument("--data-dir", type=text, help="evaluate on this image folder or CIFAR batch directory instead")
    parser.add_argument("--image", nargs="+", type=text, metavar="PATH", help="classify these images instead")
    parser.add_argument("--top-k", type=positive(int, 1000), default=3,
                        help="classes to show per image with --image (default: 3)")
    parser.add_argument("--batch-size", type=positive(int, MAX_BATCH), default=EVALUATION_BATCH_SIZE,
                        help=f"images per prediction batch (default: {EVALUATION_BATCH_SIZE})")
    parser.add_argument("--tta", action="store_true",
                        help="also report the accuracy with test-time augmentation: the mean logits of each image, its "
                             "mirror and both moved one pixel diagonally (the plain accuracy stays beside it)")
    parser.add_argument("--export", type=text, metavar="DIR",
                        help="instead of evaluating, export the model into this new folder for serving, with "
                             "export.json (input, classes, check); checked to give model.keras's logits")
    parser.add_argument("--format", choices=sorted(FORMATS), help="with --export: onnx (DIR/model.onnx, the default; "
                        "ONNX Runtime), saved_model (DIR/saved_model/, TensorFlow Serving) or timm (a ViT as "
                        "DIR/model.safetensors for timm's VisionTransformer, its arguments in export.json)")
    return parser


def check_export_options(args, model):
    if args.format and not args.export:
        raise UserError("--format goes with --export DIR")
    if args.export:
        args.format = args.format or "onnx"
        if args.image or args.dataset or args.data_dir or args.tta:
            raise UserError("--export exports the model; drop --image, --dataset, --data-dir and --tta")
        check_export(args.export, args.format, model)
    if args.tta and args.image:
        raise UserError("--tta is for evaluating on a test split; drop it with --image")


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    _, config = open_finished_run(args.run_dir)  # a folder that is no finished run answers before Keras loads
    check_export_options(args, config["model"])
    backend.start()
    if args.export:
        from harness.reporting.export import export_run

        summary = export_run(args.run_dir, args.export, args.format)
        size = summary["input"]["shape"][1]
        takes = (f"{summary['timm']['class'].rsplit('.', 1)[1]}(**arguments in export.json) loads it; input "
                 f"{summary['timm']['input']}" if "timm" in summary else
                 f"input float32 RGB in [0, 255] of shape (batch, {size}, {size}, 3)")
        print(f"exported to {args.export}/{summary['file']} ({args.format}): {takes}, output "
              f"{summary['output']['shape'][1]} logits; the same logits as model.keras on {summary['check']['images']} "
              f"images (max difference {summary['check']['max_abs_logit_difference']:.1e}); classes and settings in "
              f"{args.export}/export.json")
        return
    from harness.reporting.evaluate_run import classify_images, evaluate_run

    if args.image:
        classify_images(args.run_dir, args.image, args.top_k)
        return
    metrics, out = evaluate_run(args.run_dir, args.dataset, args.data_dir, args.batch_size, args.tta)
    top5 = f", top-5 {100 * metrics['top5_accuracy']:.2f}%" if "top5_accuracy" in metrics else ""
    if args.tta:
        top5 += f"; {100 * metrics['accuracy_tta']:.2f}% with test-time augmentation"
    print(f"test accuracy {100 * metrics['accuracy']:.2f}%{top5}, loss {metrics['loss']:.4f} on "
          f"{metrics['images']} images ({metrics['images_per_second']:.0f} img/s); figures and tables in {out}")


if __name__ == "__main__":
    main()
