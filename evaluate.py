"""Evaluate a trained run on its test split, or classify your own images with it.

    python evaluate.py runs/RUN                    # writes runs/RUN/eval/: metrics, confusion matrix, mistakes
    python evaluate.py runs/RUN --data-dir DIR     # on other data with the same classes
    python evaluate.py runs/RUN --image cat.jpg    # top-k classes of your own images (any size/format)
"""

from harness import backend
from harness.cli import MAX_BATCH, OneLineErrorParser, positive, text
from harness.errors import cli_main
from harness.training.run_dir import open_finished_run


def build_parser():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=text, help="a run directory written by train.py")
    parser.add_argument("--dataset", type=text, help="evaluate on this dataset instead of the run's own (same classes)")
    parser.add_argument("--data-dir", type=text, help="evaluate on this image folder or CIFAR batch directory instead")
    parser.add_argument("--image", nargs="+", type=text, metavar="PATH", help="classify these images instead")
    parser.add_argument("--top-k", type=positive(int, 1000), default=3, help="classes to show per image with --image (default: 3)")
    parser.add_argument("--batch-size", type=positive(int, MAX_BATCH), default=256, help="images per prediction batch (default: 256)")
    return parser


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    open_finished_run(args.run_dir)  # a folder that is no finished run answers before Keras loads
    backend.start()
    from harness.reporting.evaluate_run import classify_images, evaluate_run

    if args.image:
        classify_images(args.run_dir, args.image, args.top_k)
        return
    metrics, out = evaluate_run(args.run_dir, args.dataset, args.data_dir, args.batch_size)
    top5 = f", top-5 {100 * metrics['top5_accuracy']:.2f}%" if "top5_accuracy" in metrics else ""
    print(f"test accuracy {100 * metrics['accuracy']:.2f}%{top5}, loss {metrics['loss']:.4f} on "
          f"{metrics['images']} images ({metrics['images_per_second']:.0f} img/s); figures and tables in {out}")


if __name__ == "__main__":
    main()
