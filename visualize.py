"""Compare training runs (typically a ViT and a CNN) in figures and a report: report.md, report.html, report.pdf.

    python visualize.py runs/VIT_RUN runs/CNN_RUN --out reports/comparison
    python visualize.py runs/VIT_RUN runs/CNN_RUN --sweep sweeps/smoke-cifar10_sample --out reports/all
"""

from harness import backend
from harness.cli import MAX_BATCH, OneLineErrorParser, positive, text
from harness.errors import cli_main
from harness.training.config import EVALUATION_BATCH_SIZE


def build_parser():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="*", type=text, metavar="RUN_DIR", help="run directories written by train.py")
    parser.add_argument("--sweep", type=text, metavar="DIR", help="add the data-scaling figure of a scaling.py sweep")
    parser.add_argument("--out", required=True, type=text,
                        help="folder for the PNG figures and the report (.md, .html to hand in, .pdf)")
    parser.add_argument("--batch-size", type=positive(int, MAX_BATCH), default=EVALUATION_BATCH_SIZE,
                        help=f"images per prediction batch (default: {EVALUATION_BATCH_SIZE})")
    return parser


@cli_main
def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.run_dirs and not args.sweep:
        parser.error("give run directories, --sweep DIR, or both")
    from harness.reporting.runs import check_comparable, check_report_folder, check_sweep  # answer before Keras loads

    check_report_folder(args.out)
    if args.run_dirs:
        check_comparable(args.run_dirs)
    if args.sweep:
        check_sweep(args.sweep)
    backend.start()
    from harness.reporting.report import write_report

    report = write_report(args.run_dirs, args.out, args.batch_size, sweep=args.sweep)
    print(f"report: {report} (figures beside it); to hand in: {report.with_suffix('.html')} (one file, figures "
          f"inside) or {report.with_suffix('.pdf')}")


if __name__ == "__main__":
    main()
