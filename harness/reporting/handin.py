"""The report as documents to hand in: report.html (one file, figures embedded, viewable offline) and
report.pdf, both rendered from report.md so that the three say the same."""

import base64
import html
import pathlib
import re

import markdown
import matplotlib
from fpdf import FPDF
from PIL import Image

IMAGE = re.compile(r'<img alt="([^"]*)" src="([^"]+)" />')

STYLE = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; max-width: 64rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { color: #8b1a1a; } h2 { color: #8b1a1a; border-bottom: 1px solid #ddd; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } img { max-width: 100%; }
"""

# Matplotlib's own DejaVu Sans: installed with it, and it has the arrows, ± and subscripts reports use.
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf",
              "BI": "DejaVuSans-BoldOblique.ttf"}


def write_documents(report_md):
    """Writes report.html and report.pdf beside report.md (whose figures are PNGs in the same folder)."""
    report_md = pathlib.Path(report_md)
    body = markdown.markdown(report_md.read_text(), extensions=["tables"])
    title = re.search(r"<h1>(.*?)</h1>", body)
    title = html.unescape(title.group(1)) if title else "Report"
    html_path = report_md.with_suffix(".html")
    html_path.write_text(_html(body, title, report_md.parent))
    pdf_path = report_md.with_suffix(".pdf")
    _pdf(body, title, report_md.parent).output(str(pdf_path))
    return html_path, pdf_path


def _html(body, title, folder):
    def embedded(match):
        png = base64.b64encode((folder / match.group(2)).read_bytes()).decode()
        return f'<img alt="{match.group(1)}" src="data:image/png;base64,{png}" />'

    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{STYLE}</style>\n</head>\n<body>\n{IMAGE.sub(embedded, body)}\n</body>\n</html>\n")


def _pdf(body, title, folder):
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("visualize.py")
    fonts = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for style, file_name in FONT_FILES.items():
        pdf.add_font("DejaVu", style, str(fonts / file_name))
    pdf.set_font("DejaVu", size=9)
    pdf.add_page()

    def fitted(match):  # as wide as the page, or less where the figure is tall; fpdf2 reads points
        path = folder / match.group(2)
        with Image.open(path) as image:
            aspect = image.height / image.width
        width = min(pdf.epw, 0.8 * pdf.eph / aspect) * pdf.k
        return f'<img src="{path}" width="{width:.0f}" height="{width * aspect:.0f}">'

    pdf.write_html(IMAGE.sub(fitted, body), font_family="DejaVu")
    return pdf
