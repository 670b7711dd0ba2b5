#!/usr/bin/python3
"""sans_font.py IN.ttf OUT.ttf [IN.ttf OUT.ttf ...] - DejaVu Sans without its hinting.

Letters and faxes are drawn in DejaVu Sans with unhinted metrics and outlines
(channels/letter.c sets CAIRO_HINT_STYLE_NONE and CAIRO_HINT_METRICS_OFF): the TrueType
instructions in the font are never run by crier, and a printer or a fax gateway
rasterises a PDF at 200 dpi and more, where poppler renders the same pixels with or
without them. Yet cairo embeds each glyph's instructions, and the font's programs (fpgm,
prep, cvt), in every subset it writes: three fifths of a fax's font bytes, deflated again
for every fax (docs/benchmarks.md, "Fonts without hinting").

This writes a copy of each font with every instruction and hinting table removed, and
nothing else changed: the same glyphs, glyph ids, outlines, advances, kerning and
OpenType layout tables, so pango shapes and breaks every line exactly as before. The copy
is renamed Crier Sans (DejaVu's licence asks that a changed font not be passed off as
the original, and a distinct family keeps fontconfig from mixing the two); its copyright
and licence records are DejaVu's own.

Generated at build time with fontTools (python3-fonttools) from fonts-dejavu-core; the
bytes are the same on every build from the same input (the head table keeps the input's
timestamps), so a fax's PDF is too.
"""
import io
import sys

try:
    from fontTools.ttLib import TTFont
except ImportError as e:
    sys.exit("sans_font.py: %s (on Debian: apt-get install python3-fonttools)" % e)

FAMILY_FROM, FAMILY_TO = "DejaVu Sans", "Crier Sans"
PS_FROM, PS_TO = "DejaVuSans", "CrierSans"
DESCRIPTION = ("DejaVu Sans without TrueType hinting instructions, made for crier's letters "
               "and faxes; outlines, metrics and layout tables are DejaVu Sans's own.")


# what hinting leaves outside the glyphs: the font's programs and its hinted device metrics
HINTING_TABLES = ("fpgm", "prep", "cvt ", "hdmx", "LTSH", "VDMX")


def strip(path):
    # Only glyf, maxp, head and name are decompiled and changed: fontTools writes every
    # other table (GSUB, GPOS, kern, cmap, hmtx, ...) back byte for byte.
    font = TTFont(path, recalcTimestamp=False, recalcBBoxes=False)
    for tag in HINTING_TABLES + ("FFTM",):  # FFTM: FontForge's own timestamps
        if tag in font:
            del font[tag]
    glyf = font["glyf"]
    for name in font.getGlyphOrder():
        glyf[name].removeHinting()
    maxp = font["maxp"]
    maxp.maxZones = 1
    maxp.maxTwilightPoints = maxp.maxStorage = maxp.maxFunctionDefs = 0
    maxp.maxInstructionDefs = maxp.maxStackElements = maxp.maxSizeOfInstructions = 0
    font["head"].flags &= ~(1 << 4)  # "instructions may alter advance widths": there are none
    renamed = 0
    for record in font["name"].names:
        text = record.toUnicode()
        if FAMILY_FROM in text or PS_FROM in text:
            record.string = text.replace(FAMILY_FROM, FAMILY_TO).replace(PS_FROM, PS_TO)
            renamed += 1
    if renamed == 0:
        sys.exit("sans_font.py: %s is not DejaVu Sans (no name record says so)" % path)
    font["name"].setName(DESCRIPTION, 10, 3, 1, 0x409)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        sys.exit("usage: sans_font.py IN.ttf OUT.ttf [IN.ttf OUT.ttf ...]")
    for src, dst in zip(args[0::2], args[1::2]):
        data = strip(src)
        with open(dst, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
