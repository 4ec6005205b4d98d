"""Compare training runs (typically a ViT and a CNN) in figures and a Markdown report.

    python visualize.py runs/VIT_RUN runs/CNN_RUN --out reports/comparison
"""

from harness import quiet

quiet.silence_tensorflow_startup()

from harness.cli import OneLineErrorParser, positive  # noqa: E402
from harness.errors import cli_main  # noqa: E402


@cli_main
def main(argv=None):
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories written by train.py")
    parser.add_argument("--out", required=True, help="folder for the PNG figures and report.md")
    parser.add_argument("--batch-size", type=positive(int), default=256, help="images per prediction batch")
    args = parser.parse_args(argv)
    from harness.reporting.report import write_report  # loads Keras

    report = write_report(args.run_dirs, args.out, args.batch_size)
    print(f"report: {report} (figures beside it)")


if __name__ == "__main__":
    main()
