#!/usr/bin/python3
"""letters_reportlab.py BODY.md N OUT.pdf - the comparison for bench/letters.sh.

Renders the same letter as crier's mail channel (return address and recipient blocks in
the #10 window positions of docs/letters.md, the letter.md body in crier's Markdown
subset with the same fonts and sizes, "Page N of M" footers) N times into one PDF with
ReportLab's platypus, and prints letters per second and milliseconds of CPU per letter
(this process's user and system time: steadier than wall clock on a loaded machine).
"""
import re
import sys
import time

from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (BaseDocTemplate, Frame, PageBreak, PageTemplate, Paragraph,
                                Spacer)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
pdfmetrics.registerFont(TTFont("DejaVu", FONT))
pdfmetrics.registerFont(TTFont("DejaVu-Bold", BOLD))
pdfmetrics.registerFontFamily("DejaVu", normal="DejaVu", bold="DejaVu-Bold")

BODY = ParagraphStyle("body", fontName="DejaVu", fontSize=10, leading=12.5, spaceAfter=5)
TITLE = ParagraphStyle("title", parent=BODY, fontName="DejaVu-Bold", fontSize=16, leading=20)
HEAD = ParagraphStyle("head", parent=BODY, fontName="DejaVu-Bold", fontSize=12, leading=15)
BULLET = ParagraphStyle("bullet", parent=BODY, leftIndent=14, bulletIndent=3)

RETURN = ["Example Corp Privacy Office", "100 Main Street", "Springfield, IL 62701"]
RECIPIENT = ["Jane Q. Public", "123 Elm Street", "Springfield, IL 62704"]


def inline(text):
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"\*\*(\S(?:.*?\S)?)\*\*", r"<b>\1</b>", text)


def blocks(md):
    out, para, kind = [], [], None
    def flush():
        nonlocal para, kind
        if para:
            style = {"title": TITLE, "head": HEAD, "bullet": BULLET}.get(kind, BODY)
            out.append(Paragraph(inline(" ".join(para)), style,
                                 bulletText="\u2022" if kind == "bullet" else None))
        para, kind = [], None
    for line in md.splitlines():
        if not line.strip():
            flush()
        elif line.startswith("# "):
            flush(); para, kind = [line[2:]], "title"; flush()
        elif line.startswith("## "):
            flush(); para, kind = [line.lstrip("#").strip()], "head"; flush()
        elif line.startswith("- "):
            flush(); para, kind = [line[2:]], "bullet"
        else:
            para.append(line.strip())
    flush()
    return out


def main():
    body, n, out = open(sys.argv[1], encoding="utf-8").read(), int(sys.argv[2]), sys.argv[3]
    started = time.perf_counter()
    cpu_started = time.process_time()
    pages = {}

    def first_page(canvas, doc):
        canvas.setFont("DejaVu", 10)
        y = 792 - 36 - 10
        for line in RETURN:
            canvas.drawString(36, y, line); y -= 12
        y = 792 - 147 - 10
        for line in RECIPIENT:
            canvas.drawString(36, y, line); y -= 12
        canvas.drawRightString(576, 792 - 147 - 10, "2026-12-01")
        footer(canvas, doc)

    def footer(canvas, doc):
        canvas.setFont("DejaVu", 9)
        canvas.drawCentredString(306, 30, "Page %d" % doc.page)

    doc = BaseDocTemplate(out, pagesize=letter)
    first = Frame(54, 54, 504, 792 - 243 - 54, id="first")
    rest = Frame(54, 54, 504, 792 - 108, id="rest")
    doc.addPageTemplates([PageTemplate("first", [first], onPage=first_page),
                          PageTemplate("rest", [rest], onPage=footer)])
    from reportlab.platypus.doctemplate import NextPageTemplate
    story = []
    for i in range(n):
        story.append(NextPageTemplate("rest"))
        story.extend(blocks(body))
        if i + 1 < n:
            story.append(NextPageTemplate("first"))
            story.append(PageBreak())
    doc.build(story)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print("%.1f %.3f" % (n / elapsed, 1000 * cpu / n))


if __name__ == "__main__":
    main()
