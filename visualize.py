"""Compare training runs (typically a ViT and a CNN) in figures and a Markdown report.

    python visualize.py runs/VIT_RUN runs/CNN_RUN --out reports/comparison
"""

from harness import backend
from harness.cli import MAX_BATCH, OneLineErrorParser, positive, text
from harness.errors import cli_main


def build_parser():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", type=text, metavar="RUN_DIR", help="run directories written by train.py")
    parser.add_argument("--out", required=True, type=text, help="folder for the PNG figures and report.md")
    parser.add_argument("--batch-size", type=positive(int, MAX_BATCH), default=256, help="images per prediction batch")
    return parser


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    from harness.reporting.runs import check_comparable  # plain Python: answers before Keras loads

    check_comparable(args.run_dirs, args.out)
    backend.start()
    from harness.reporting.report import write_report

    report = write_report(args.run_dirs, args.out, args.batch_size)
    print(f"report: {report} (figures beside it)")


if __name__ == "__main__":
    main()
