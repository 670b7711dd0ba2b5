/*
 * test_letter.c - letters rendered to PDF and read back with poppler's tools (pdfinfo,
 * pdftotext, pdffonts, pdftoppm), which know nothing of how crier drew them: page size
 * and count, the address text inside the envelope windows, "Page N of M" footers,
 * wrapping, duplex parity, markup escaping, names in four scripts with their fonts
 * embedded, the country line, the IMb (its fields, zint's encoding against the
 * USPS-B-3200 example, and the bars as drawn read back from pixels), byte-identical
 * re-renders, and every refusal.
 *
 * A test that needs a poppler tool skips when it is missing. The sample letter is left
 * beside the test (letter-sample.pdf, letter-sample-1.png) for a person to look at.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cairo-pdf.h>
#include <cmocka.h>
#include <pango/pangocairo.h>
#include <zint.h>

#include "crier/crier.h"
#include "crier/letter.h"

/* USPS-B-3200's example 4: these fields encode to exactly these bars. */
#define GOLDEN_INPUT "01234567094987654321-01234567891"
#define GOLDEN_BARS  "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA"

static const char *const return_address[] = {"Example Corp", "Privacy Office", "100 Main Street",
                                             "Springfield, IL 62701", NULL};

static const struct letter_imb golden_imb = {"01", "234", "567094", "987654321", "01234567891"};

static const char sample_body[] =
    "# Notice of Data Breach\n"
    "\n"
    "Date of this notice: 2026-12-01\n"
    "\n"
    "Dear Jane Q. Public,\n"
    "\n"
    "We are writing to tell you about a data security incident at Example Corp that\n"
    "involved some of your personal information.\n"
    "\n"
    "## What happened\n"
    "\n"
    "On 2 November an unauthorised person copied files from a file share.\n"
    "\n"
    "## What you can do\n"
    "\n"
    "- Review your account statements and credit reports for activity you do not\n"
    "  recognise.\n"
    "- **Equifax:** P.O. Box 105788, Atlanta, GA 30348-5788; toll-free 1-888-298-0045\n"
    "- Place a security freeze on your credit file. A security freeze is free.\n"
    "\n"
    "Please quote your reference number, **R-1001**.\n"
    "\n"
    "Example Corp\n";

/* ---------------------------------------------------------------------------------- */
/* helpers */

static bool tool_available(const char *tool)
{
    char *command = xasprintf("command -v %s >/dev/null 2>&1", tool);
    int status = system(command);
    free(command);
    return status == 0;
}

#define NEED_TOOL(tool)                                                                            \
    do {                                                                                           \
        if (!tool_available(tool)) {                                                               \
            print_message("%s is not installed: skipped\n", tool);                                 \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* run - a shell command's standard output (asserting it exits 0). */
static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *run(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *command = xvasprintf(fmt, ap);
    va_end(ap);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t len = 0, capacity = 4096;
    char *out = xmalloc(capacity);
    for (size_t got = fread(out, 1, capacity - 1, pipe); got > 0;
         got = fread(out + len, 1, capacity - len - 1, pipe)) {
        len += got;
        if (capacity - len < 2) {
            capacity *= 2;
            out = xrealloc(out, capacity);
        }
    }
    out[len] = '\0';
    int status = pclose(pipe);
    if (status != 0)
        fail_msg("'%s' failed (status %d)", command, status);
    free(command);
    return out;
}

static void sample_input(struct letter_input *in)
{
    *in = (struct letter_input){
        .return_address = return_address,
        .name = "Jane Q. Public",
        .address = {"123 Elm Street", "Apt 4B", "Springfield", "IL", "62704-1234"},
        .country = "US",
        .date = "2026-12-01",
        .body = sample_body,
        .imb = &golden_imb,
    };
}

/* render_file - one letter to a temporary PDF; returns its path (unlink and free it). */
static char *render_file(const struct letter_layout *layout, const struct letter_input *in,
                         int *ret_pages)
{
    unsigned char *pdf = NULL;
    size_t len = 0;
    char err[256] = "";
    int pages = 0;
    int r = letter_render_pdf(layout, in, &pdf, &len, &pages, err, sizeof(err));
    if (r != 0)
        fail_msg("letter_render_pdf: %d %s", r, err);
    char *path = xstrdup("/tmp/crier-test-letter-XXXXXX.pdf");
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pdf, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    free(pdf);
    if (ret_pages != NULL)
        *ret_pages = pages;
    return path;
}

static void remove_file(char *path)
{
    unlink(path);
    free(path);
}

/* pdf_pages - pdfinfo's page count, and check every page is US Letter. */
static int pdf_pages(const char *path)
{
    char *info = run("pdfinfo -l 999 '%s'", path);
    const char *line = strstr(info, "Pages:");
    assert_non_null(line);
    int pages = atoi(line + 6);
    int sizes = 0;
    for (const char *s = strstr(info, "size:"); s != NULL; s = strstr(s + 1, "size:")) {
        if (strncmp(s, "size: ", 6) == 0 || strncmp(s, "size:", 5) == 0) {
            double width = 0, height = 0;
            if (sscanf(s + 5, " %lf x %lf", &width, &height) == 2) {
                assert_true(width > 611.9 && width < 612.1);
                assert_true(height > 791.9 && height < 792.1);
                sizes++;
            }
        }
    }
    assert_true(sizes >= pages); /* "Page size:" once and "Page N size:" per page */
    free(info);
    return pages;
}

static size_t count_of(const char *haystack, const char *needle)
{
    size_t n = 0;
    for (const char *s = strstr(haystack, needle); s != NULL; s = strstr(s + 1, needle))
        n++;
    return n;
}

/* One word of pdftotext -bbox: points from the page's top-left corner. */
struct word {
    int page; /* 1-based */
    double x_min, y_min, x_max, y_max;
    char text[128];
};

static size_t pdf_words(const char *path, struct word **ret_words)
{
    char *html = run("pdftotext -bbox '%s' -", path);
    size_t count = 0, capacity = 256;
    struct word *words = xcalloc(capacity, sizeof(words[0]));
    int page = 0;
    for (char *line = strtok(html, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strstr(line, "<page ") != NULL)
            page++;
        const char *w = strstr(line, "<word ");
        if (w == NULL)
            continue;
        if (count == capacity) {
            capacity *= 2;
            words = xreallocarray(words, capacity, sizeof(words[0]));
        }
        struct word *word = &words[count];
        if (sscanf(w, "<word xMin=\"%lf\" yMin=\"%lf\" xMax=\"%lf\" yMax=\"%lf\">%127[^<]",
                   &word->x_min, &word->y_min, &word->x_max, &word->y_max, word->text) == 5) {
            word->page = page;
            count++;
        }
    }
    free(html);
    *ret_words = words;
    return count;
}

static bool word_inside(const struct word *word, const struct letter_box *box)
{
    const double slack = 1.0; /* pdftotext's boxes use the font's ascent and descent */
    return word->page == 1 && word->x_min >= box->x - slack &&
           word->x_max <= box->x + box->width + slack && word->y_min >= box->y - slack &&
           word->y_max <= box->y + box->height + slack;
}

static bool word_touches(const struct word *word, const struct letter_box *box)
{
    return word->page == 1 && word->x_max > box->x && word->x_min < box->x + box->width &&
           word->y_max > box->y && word->y_min < box->y + box->height;
}

/* assert_words_in_box - every word of lines is inside box on page 1, and no other word is. */
static void assert_words_in_box(const struct word *words, size_t count,
                                const struct letter_box *box, const char *const *lines)
{
    char *expected = xstrdup("");
    for (size_t i = 0; lines[i] != NULL; i++) {
        char *joined = xasprintf("%s %s ", expected, lines[i]);
        free(expected);
        expected = joined;
    }
    /* each expected word appears inside the box */
    char *copy = xstrdup(expected);
    char *save = NULL;
    for (char *token = strtok_r(copy, " ", &save); token != NULL;
         token = strtok_r(NULL, " ", &save)) {
        bool found = false;
        for (size_t i = 0; i < count && !found; i++)
            found = strcmp(words[i].text, token) == 0 && word_inside(&words[i], box);
        if (!found)
            fail_msg("'%s' is not inside the box at %g,%g", token, box->x, box->y);
    }
    free(copy);
    /* and nothing else shows through the window */
    for (size_t i = 0; i < count; i++) {
        if (!word_touches(&words[i], box))
            continue;
        char *needle = xasprintf(" %s ", words[i].text);
        if (strstr(expected, needle) == NULL)
            fail_msg("'%s' shows in the box at %g,%g", words[i].text, box->x, box->y);
        free(needle);
    }
    free(expected);
}

/* ---------------------------------------------------------------------------------- */
/* the Intelligent Mail barcode */

struct imb_case {
    struct letter_imb imb;
    int expected; /* 0 or -EINVAL */
    const char *output;
};

static const struct imb_case imb_cases[] = {
    {{"01", "234", "567094", "987654321", "01234567891"}, 0, GOLDEN_INPUT},
    {{"01", "234", "567094", "987654321", "01234"}, 0, "01234567094987654321-01234"},
    {{"01", "234", "567094", "987654321", "012345678"}, 0, "01234567094987654321-012345678"},
    {{"01", "234", "567094", "987654321", "01234-5678"}, 0, "01234567094987654321-012345678"},
    {{"01", "234", "567094", "987654321", ""}, 0, "01234567094987654321"},
    {{"01", "234", "567094", "987654321", NULL}, 0, "01234567094987654321"},
    {{"00", "270", "123456789", "000001", "62704"}, 0, "00270123456789000001-62704"},
    /* wrong lengths */
    {{"1", "234", "567094", "987654321", ""}, -EINVAL, NULL},
    {{"01", "23", "567094", "987654321", ""}, -EINVAL, NULL},
    {{"01", "234", "56709", "987654321", ""}, -EINVAL, NULL},
    {{"01", "234", "567094", "98765432", ""}, -EINVAL, NULL},    /* 19-digit tracking */
    {{"01", "234", "123456789", "98765432", ""}, -EINVAL, NULL}, /* 9-digit MID, 8 serial */
    {{"01", "234", "567094", "987654321", "0123"}, -EINVAL, NULL},
    {{"01", "234", "567094", "987654321", "0123456789"}, -EINVAL, NULL},
    {{"01", "234", "567094", "987654321", "012345678901"}, -EINVAL, NULL},
    /* not digits, absent, out of range */
    {{"0A", "234", "567094", "987654321", ""}, -EINVAL, NULL},
    {{"01", "234", "567094", "98765432 ", ""}, -EINVAL, NULL},
    {{"01", "234", "567094", "987654321", "0123X"}, -EINVAL, NULL},
    {{NULL, "234", "567094", "987654321", ""}, -EINVAL, NULL},
    {{"05", "234", "567094", "987654321", ""}, -EINVAL, NULL}, /* second digit 0-4 */
};

static void test_imb_input(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(imb_cases); i++) {
        const struct imb_case *c = &imb_cases[i];
        char out[LETTER_IMB_INPUT_MAX] = "untouched";
        char err[200] = "";
        int r = letter_imb_input(&c->imb, out, err, sizeof(err));
        if (r != c->expected)
            fail_msg("case %zu: %d, expected %d (%s)", i, r, c->expected, err);
        if (r == 0)
            assert_string_equal(out, c->output);
        else {
            assert_string_equal(out, "untouched");
            assert_true(strstr(err, "IMb") != NULL);
        }
    }
}

/* bars_of - zint's three rows as the F/A/D/T letters USPS-B-3200 uses. */
static void bars_of(const struct zint_symbol *symbol, char bars[66])
{
    int n = 0;
    for (int column = 0; column < symbol->width && n < 65; column += 2) {
        bool up = symbol->encoded_data[0][column / 8] & (1 << (column % 8));
        bool down = symbol->encoded_data[2][column / 8] & (1 << (column % 8));
        bars[n++] = up && down ? 'F' : up ? 'A' : down ? 'D' : 'T';
    }
    bars[n] = '\0';
}

static void test_imb_zint(void **state)
{
    (void)state;
    /* zint accepts a 20-digit tracking code with an 11-digit ZIP, and encodes the
     * specification's example exactly */
    struct zint_symbol *symbol = ZBarcode_Create();
    symbol->symbology = BARCODE_USPS_IMAIL;
    int status =
        ZBarcode_Encode(symbol, (const unsigned char *)GOLDEN_INPUT, (int)strlen(GOLDEN_INPUT));
    assert_true(status < ZINT_ERROR);
    assert_int_equal(symbol->rows, 3);
    char bars[66];
    bars_of(symbol, bars);
    assert_string_equal(bars, GOLDEN_BARS);
    ZBarcode_Delete(symbol);

    /* and rejects a 19-digit one */
    symbol = ZBarcode_Create();
    symbol->symbology = BARCODE_USPS_IMAIL;
    const char *short_input = "0123456709498765432-01234567891";
    status = ZBarcode_Encode(symbol, (const unsigned char *)short_input, (int)strlen(short_input));
    assert_true(status >= ZINT_ERROR);
    ZBarcode_Delete(symbol);

    /* letter_render refuses a bad field before drawing anything */
    struct letter_layout layout;
    letter_layout_default(&layout);
    struct letter_input in;
    sample_input(&in);
    struct letter_imb bad = golden_imb;
    bad.serial = "98765432";
    in.imb = &bad;
    unsigned char *pdf = NULL;
    size_t len = 0;
    int pages = -1;
    char err[200] = "";
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -EINVAL);
    assert_null(pdf);
    assert_int_equal(pages, -1);
    assert_true(strstr(err, "serial") != NULL);
}

#define STRIP_DPI 600

/* strip_columns - page 1 of a PDF rasterised at STRIP_DPI over a strip (points): for each
 * pixel column its first and last dark row, or -1 (free both). Returns the strip's width
 * in pixels; *ret_height its height. */
static int strip_columns(const char *path, double x_pt, double y_pt, double width_pt,
                         double height_pt, int **ret_top, int **ret_bottom, int *ret_height)
{
    const int dpi = STRIP_DPI;
    char *prefix = xasprintf("%s-imb", path);
    free(run("pdftoppm -gray -r %d -f 1 -l 1 -x %d -y %d -W %d -H %d -singlefile '%s' '%s'", dpi,
             (int)(x_pt / 72 * dpi), (int)(y_pt / 72 * dpi), (int)(width_pt / 72 * dpi),
             (int)(height_pt / 72 * dpi), path, prefix));
    char *pgm = xasprintf("%s.pgm", prefix);
    FILE *file = fopen(pgm, "rb");
    assert_non_null(file);
    int w, h, max;
    assert_int_equal(fscanf(file, "P5 %d %d %d", &w, &h, &max), 3);
    fgetc(file);
    unsigned char *pixels = xmalloc((size_t)w * h);
    assert_int_equal(fread(pixels, 1, (size_t)w * h, file), (size_t)w * h);
    fclose(file);
    int *top = xmalloc(sizeof(int) * w), *bottom = xmalloc(sizeof(int) * w);
    for (int c = 0; c < w; c++) {
        top[c] = bottom[c] = -1;
        for (int r = 0; r < h; r++)
            if (pixels[(size_t)r * w + c] < 128) {
                if (top[c] < 0)
                    top[c] = r;
                bottom[c] = r;
            }
    }
    free(pixels);
    unlink(pgm);
    free(pgm);
    free(prefix);
    *ret_top = top;
    *ret_bottom = bottom;
    *ret_height = h;
    return w;
}

/*
 * bars_drawn - the bars in a strip (points) of page 1 holding only the barcode, rasterised
 * by strip_columns: each dark column run is a bar, and its top and bottom say which of the
 * four states it is. Also checks the USPS-B-3200 dimensions: 22 +- 2 bars per inch, the
 * full bar 0.125" to 0.165".
 */
static void bars_drawn(const char *path, double x_pt, double y_pt, double width_pt,
                       double height_pt, char bars[80])
{
    const int dpi = STRIP_DPI;
    int *top, *bottom, h;
    int w = strip_columns(path, x_pt, y_pt, width_pt, height_pt, &top, &bottom, &h);
    int overall_top = h, overall_bottom = -1;
    for (int c = 0; c < w; c++) {
        if (top[c] >= 0 && top[c] < overall_top)
            overall_top = top[c];
        if (bottom[c] > overall_bottom)
            overall_bottom = bottom[c];
    }
    int n = 0, first_bar = -1, last_bar = -1;
    for (int c = 0; c < w && n < 79;) {
        if (top[c] < 0) {
            c++;
            continue;
        }
        int t = top[c], b = bottom[c], start = c;
        while (c < w && top[c] >= 0) {
            t = top[c] < t ? top[c] : t;
            b = bottom[c] > b ? bottom[c] : b;
            c++;
        }
        if (first_bar < 0)
            first_bar = start;
        last_bar = c;
        bool up = t - overall_top < 6, down = overall_bottom - b < 6;
        bars[n++] = up && down ? 'F' : up ? 'A' : down ? 'D' : 'T';
    }
    bars[n] = '\0';
    if (n == 65) {
        double pitch_inch = (double)(last_bar - first_bar) / dpi / 64.5;
        assert_true(1 / pitch_inch >= 20 && 1 / pitch_inch <= 24);
        double full_inch = (double)(overall_bottom - overall_top + 1) / dpi;
        assert_true(full_inch >= 0.125 && full_inch <= 0.166);
    }
    free(top);
    free(bottom);
}

static void test_imb_drawn(void **state)
{
    (void)state;
    NEED_TOOL("pdftoppm");
    NEED_TOOL("pdftotext");
    NEED_TOOL("pdffonts");
    struct letter_layout layout;
    letter_layout_default(&layout);
    struct letter_input in;
    sample_input(&in);
    const struct letter_box *box = &layout.recipient_box;
    char bars[80];

    /* above the name: in the top of the window, inside its 0.028" clear zone */
    char *path = render_file(&layout, &in, NULL);
    bars_drawn(path, box->x - 2, box->y + 1, box->width + 4, layout.imb_height + 2.5, bars);
    assert_string_equal(bars, GOLDEN_BARS);
    /* drawn as glyphs of crier's bar font, embedded (a subset) like the text's fonts, and
     * not as the rectangles letter.c falls back to; that the bars add no text to the
     * window is test_windows' "nothing else shows through the window" */
    char *fonts = run("pdffonts '%s'", path);
    const char *bar_font = strstr(fonts, "+CrierIMb-Regular ");
    if (bar_font == NULL || strstr(bar_font, " yes yes ") == NULL)
        fail_msg("the bar font is not embedded as a subset:\n%s", fonts);
    free(fonts);
    /* nothing dark in the clear zone between the box's top and the bars */
    bars_drawn(path, box->x, box->y - 0.5, box->width, 1.4, bars);
    assert_string_equal(bars, "");

    /* the fallback draws the same bars as filled rectangles, with no bar font */
    letter_imb_rectangles(true);
    char *rects = render_file(&layout, &in, NULL);
    letter_imb_rectangles(false);
    bars_drawn(rects, box->x - 2, box->y + 1, box->width + 4, layout.imb_height + 2.5, bars);
    assert_string_equal(bars, GOLDEN_BARS);
    fonts = run("pdffonts '%s'", rects);
    assert_null(strstr(fonts, "CrierIMb"));
    free(fonts);
    /* and where the glyphs draw them, to a pixel at 600 dpi: the font's outlines are
     * zint's rectangles (a bar's edge may fall on either side of a pixel's middle) */
    int *glyph_top, *glyph_bottom, *rect_top, *rect_bottom, h;
    int w = strip_columns(path, box->x - 2, box->y + 1, box->width + 4, layout.imb_height + 2.5,
                          &glyph_top, &glyph_bottom, &h);
    assert_int_equal(strip_columns(rects, box->x - 2, box->y + 1, box->width + 4,
                                   layout.imb_height + 2.5, &rect_top, &rect_bottom, &h),
                     w);
    int dark = 0, edges = 0;
    for (int c = 0; c < w; c++) {
        if ((glyph_top[c] < 0) != (rect_top[c] < 0)) {
            edges++;
            continue;
        }
        if (glyph_top[c] < 0)
            continue;
        dark++;
        if (abs(glyph_top[c] - rect_top[c]) > 1 || abs(glyph_bottom[c] - rect_bottom[c]) > 1)
            fail_msg("column %d: glyphs rows %d-%d, rectangles %d-%d", c, glyph_top[c],
                     glyph_bottom[c], rect_top[c], rect_bottom[c]);
    }
    assert_true(dark >= 65 * 10); /* a module is 1.625 pt: 13.5 columns at 600 dpi */
    assert_true(edges <= 2 * 65); /* at most a column at each side of a bar */
    free(glyph_top);
    free(glyph_bottom);
    free(rect_top);
    free(rect_bottom);
    remove_file(rects);
    remove_file(path);

    /* below the city line: still inside the box, the address at the box's top */
    layout.imb_below = true;
    path = render_file(&layout, &in, NULL);
    struct word *words;
    size_t count = pdf_words(path, &words);
    const char *recipient[] = {"Jane Q. Public", "123 Elm Street", "Apt 4B",
                               "Springfield, IL 62704-1234", NULL};
    assert_words_in_box(words, count, box, recipient);
    double text_top = 1e9, text_bottom = 0;
    for (size_t i = 0; i < count; i++)
        if (word_inside(&words[i], box)) {
            text_top = words[i].y_min < text_top ? words[i].y_min : text_top;
            text_bottom = words[i].y_max > text_bottom ? words[i].y_max : text_bottom;
        }
    assert_true(text_top < box->y + 1.5);
    free(words);
    bars_drawn(path, box->x - 2, text_bottom + 1, box->width + 4,
               box->y + box->height - text_bottom - 1, bars);
    assert_string_equal(bars, GOLDEN_BARS);
    remove_file(path);
}

/* ---------------------------------------------------------------------------------- */
/* pages and text */

static void test_basic(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    NEED_TOOL("pdfinfo");
    struct letter_layout layout;
    letter_layout_default(&layout);
    struct letter_input in;
    sample_input(&in);
    int pages = 0;
    char *path = render_file(&layout, &in, &pages);
    assert_int_equal(pages, 1);
    assert_int_equal(pdf_pages(path), 1);

    char *text = run("pdftotext -layout '%s' -", path);
    const char *expect[] = {"Jane Q. Public",
                            "123 Elm Street",
                            "Apt 4B",
                            "Springfield, IL 62704-1234",
                            "Example Corp",
                            "Privacy Office",
                            "Notice of Data Breach",
                            "What happened",
                            "Page 1 of 1",
                            "2026-12-01",
                            "R-1001",
                            "\u2022"};
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++)
        if (strstr(text, expect[i]) == NULL)
            fail_msg("'%s' is missing from:\n%s", expect[i], text);
    /* **bold** leaves no asterisks behind; domestic mail has no country line */
    assert_null(strstr(text, "**"));
    assert_null(strstr(text, "UNITED STATES"));
    /* the body's order is kept */
    assert_true(strstr(text, "What happened") < strstr(text, "What you can do"));
    free(text);
    remove_file(path);
}

static void test_windows(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.fold_marks = true;
    struct letter_input in;
    sample_input(&in);
    char *path = render_file(&layout, &in, NULL);
    struct word *words;
    size_t count = pdf_words(path, &words);
    const char *recipient[] = {"Jane Q. Public", "123 Elm Street", "Apt 4B",
                               "Springfield, IL 62704-1234", NULL};
    assert_words_in_box(words, count, &layout.recipient_box, recipient);
    assert_words_in_box(words, count, &layout.return_box, return_address);
    free(words);
    remove_file(path);

    /* abroad, with the longest address crier prints: still inside, country last */
    in.name = "Seán Ó Briain";
    in.address[0] = "Apartment 12, The Maltings";
    in.address[1] = "Bridge Street";
    in.address[2] = "Dublin";
    in.address[3] = "";
    in.address[4] = "D08 VF8H";
    in.country = "IE";
    path = render_file(&layout, &in, NULL);
    count = pdf_words(path, &words);
    const char *abroad[] = {"Seán Ó Briain", "Apartment 12, The Maltings",
                            "Bridge Street", "Dublin D08 VF8H",
                            "IRELAND",       NULL};
    assert_words_in_box(words, count, &layout.recipient_box, abroad);
    /* IRELAND is the last line */
    double ireland_y = 0, other_max = 0;
    for (size_t i = 0; i < count; i++)
        if (word_inside(&words[i], &layout.recipient_box)) {
            if (strcmp(words[i].text, "IRELAND") == 0)
                ireland_y = words[i].y_min;
            else if (words[i].y_min > other_max)
                other_max = words[i].y_min;
        }
    assert_true(ireland_y > other_max);
    free(words);
    remove_file(path);
}

static void test_city_lines(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    struct {
        const char *address[5];
        const char *country;
        const char *city_line; /* as pdftotext prints it */
        const char *country_line;
    } cases[] = {
        {{"ul. Marszałkowska 1", "", "Warszawa", "", "00-950"}, "PL", "00-950 Warszawa", "POLAND"},
        {{"1 Rue de Rivoli", "", "Paris", "", "75001"}, "FR", "75001 Paris", "FRANCE"},
        {{"24 Sussex Dr", "", "Ottawa", "ON", "K1M 1M4"}, "CA", "Ottawa ON K1M 1M4", "CANADA"},
        {{"1-1 Chiyoda", "", "Chiyoda-ku", "Tokyo", "100-8111"},
         "JP",
         "Chiyoda-ku Tokyo 100-8111",
         "JAPAN"},
        {{"1 Calle Fortaleza", "", "San Juan", "", "00901"}, "PR", "San Juan, PR 00901", NULL},
        {{"10 Downing St", "", "London", "", "SW1A 2AA"},
         "GB",
         "London SW1A 2AA",
         "UNITED KINGDOM"},
        {{"1 Main St", "", "Hanoi", "", ""}, "VN", "Hanoi", "VIETNAM"},
        {{"1 Main St", "", "Somewhere", "", ""}, "XQ", "Somewhere", "XQ"},
    };
    struct letter_layout layout;
    letter_layout_default(&layout);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        struct letter_input in;
        sample_input(&in);
        in.imb = NULL;
        for (size_t k = 0; k < 5; k++)
            in.address[k] = cases[i].address[k];
        in.country = cases[i].country;
        char *path = render_file(&layout, &in, NULL);
        char *text = run("pdftotext -layout -f 1 -l 1 -x 0 -y 140 -W 300 -H 80 '%s' -", path);
        if (strstr(text, cases[i].city_line) == NULL)
            fail_msg("case %zu: '%s' is missing from:\n%s", i, cases[i].city_line, text);
        if (cases[i].country_line != NULL) {
            const char *country = strstr(text, cases[i].country_line);
            if (country == NULL || country < strstr(text, cases[i].city_line))
                fail_msg("case %zu: '%s' is not after the city line:\n%s", i, cases[i].country_line,
                         text);
        }
        free(text);
        remove_file(path);
    }
}

/* long_body - n numbered paragraphs, enough to need several pages. */
static char *long_body(int paragraphs)
{
    char *body = xstrdup("# Notice of Data Breach\n\n");
    for (int i = 1; i <= paragraphs; i++) {
        char *next = xasprintf("%s## Section %d\n\nParagraph %d: Lorem ipsum dolor sit amet, "
                               "consectetur adipiscing elit, sed do eiusmod tempor incididunt "
                               "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis "
                               "nostrud exercitation ullamco laboris nisi ut aliquip ex ea "
                               "commodo consequat.\n\n- first point of %d\n- second point\n\n",
                               body, i, i, i);
        free(body);
        body = next;
    }
    return body;
}

static void test_long_body(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    NEED_TOOL("pdfinfo");
    struct letter_layout layout;
    letter_layout_default(&layout);
    struct letter_input in;
    sample_input(&in);
    char *body = long_body(30);
    in.body = body;
    int pages = 0;
    char *path = render_file(&layout, &in, &pages);
    assert_true(pages >= 2);
    assert_int_equal(pdf_pages(path), pages);
    char *text = run("pdftotext -layout '%s' -", path);
    for (int p = 1; p <= pages; p++) {
        char *footer = xasprintf("Page %d of %d", p, pages);
        if (strstr(text, footer) == NULL)
            fail_msg("'%s' is missing", footer);
        free(footer);
    }
    /* nothing is lost at a page break, and the order holds */
    const char *previous = text;
    for (int i = 1; i <= 30; i++) {
        char *needle = xasprintf("Paragraph %d:", i);
        const char *at = strstr(previous, needle);
        if (at == NULL)
            fail_msg("'%s' is missing or out of order", needle);
        previous = at;
        free(needle);
    }
    assert_int_equal(count_of(text, "commodo consequat."), 30);
    free(text);

    /* no text runs into the bottom margin or the footer */
    struct word *words;
    size_t count = pdf_words(path, &words);
    for (size_t i = 0; i < count; i++) {
        bool footer = strcmp(words[i].text, "Page") == 0 || strcmp(words[i].text, "of") == 0 ||
                      (words[i].y_min > layout.page_height - layout.margin_bottom &&
                       words[i].text[0] >= '0' && words[i].text[0] <= '9');
        if (!footer && words[i].y_max > layout.page_height - layout.margin_bottom + 1.5)
            fail_msg("'%s' on page %d ends at %g", words[i].text, words[i].page, words[i].y_max);
    }
    /* no page but the last ends with a heading, or with a paragraph's first line */
    for (int p = 1; p < pages; p++) {
        double last_y = 0;
        for (size_t i = 0; i < count; i++)
            if (words[i].page == p && words[i].y_max < layout.page_height - layout.margin_bottom &&
                words[i].y_min > last_y)
                last_y = words[i].y_min;
        for (size_t i = 0; i < count; i++)
            if (words[i].page == p && words[i].y_min > last_y - 0.5 &&
                words[i].y_min < last_y + 0.5 &&
                (strcmp(words[i].text, "Section") == 0 || strcmp(words[i].text, "Paragraph") == 0))
                fail_msg("page %d ends with '%s'", p, words[i].text);
    }
    free(words);
    remove_file(path);
    free(body);
}

static void test_duplex(void **state)
{
    (void)state;
    NEED_TOOL("pdfinfo");
    NEED_TOOL("pdftotext");
    struct letter_layout layout;
    letter_layout_default(&layout);
    struct letter_input in;
    sample_input(&in);
    for (int paragraphs = 1; paragraphs <= 40; paragraphs += 13) {
        char *body = long_body(paragraphs);
        in.body = body;
        int simplex_pages = 0, duplex_pages = 0;
        layout.duplex = false;
        char *simplex = render_file(&layout, &in, &simplex_pages);
        layout.duplex = true;
        char *duplex = render_file(&layout, &in, &duplex_pages);
        assert_int_equal(duplex_pages % 2, 0);
        assert_int_equal(duplex_pages, simplex_pages + simplex_pages % 2);
        assert_int_equal(pdf_pages(duplex), duplex_pages);
        /* the footers count the pages with text, not the blank back */
        char *text = run("pdftotext -layout '%s' -", duplex);
        char *last = xasprintf("Page %d of %d", simplex_pages, simplex_pages);
        assert_non_null(strstr(text, last));
        free(last);
        free(text);
        remove_file(simplex);
        remove_file(duplex);
        free(body);
    }
}

static void test_escaping(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    struct letter_layout layout;
    letter_layout_default(&layout);
    struct letter_input in;
    sample_input(&in);
    in.name = "<b>Mallory & Co</b>";
    in.body = "# Notice\n\nDear <b>Mallory & Co</b>, <span foreground='red'>x</span> &amp; "
              "\x01\x1b[31m 2 ** 3 and **bold** and a stray **\n\n- <i>item</i> & more\n";
    char *path = render_file(&layout, &in, NULL);
    char *text = run("pdftotext -layout '%s' -", path);
    const char *expect[] = {"<b>Mallory & Co</b>", "Dear <b>Mallory & Co</b>,",
                            "<span foreground='red'>x</span> &amp;", "<i>item</i> & more",
                            "2 ** 3 and bold and"};
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++)
        if (strstr(text, expect[i]) == NULL)
            fail_msg("'%s' is missing from:\n%s", expect[i], text);
    assert_int_equal(count_of(text, "<b>Mallory & Co</b>"), 2);
    assert_int_equal(count_of(text, "**"), 2); /* "2 ** 3" and the stray one stay */
    free(text);
    remove_file(path);
}

static void test_international_names(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    NEED_TOOL("pdffonts");
    const char *names[] = {"Nguyễn Văn An", "Zofia Wójcik", "Seán Ó Briain", "山田 太郎"};
    struct letter_layout layout;
    letter_layout_default(&layout);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        struct letter_input in;
        sample_input(&in);
        in.name = names[i];
        char *body = xasprintf("# Notice\n\nDear %s,\n\nWe are writing to you.\n", names[i]);
        in.body = body;
        char *path = render_file(&layout, &in, NULL);
        char *text = run("pdftotext -layout '%s' -", path);
        /* the name in the window and in the salutation, as text (not boxes) */
        if (count_of(text, names[i]) != 2)
            fail_msg("'%s' does not appear twice in:\n%s", names[i], text);
        free(text);
        /* every font is embedded; the CJK name brings in a font that has those glyphs */
        char *fonts = run("pdffonts '%s'", path);
        assert_null(strstr(fonts, " no  ")); /* the "emb" column */
        if (i == 3 && strstr(fonts, "WenQuanYi") == NULL && strstr(fonts, "CJK") == NULL &&
            strstr(fonts, "Droid") == NULL)
            fail_msg("no CJK font embedded:\n%s", fonts);
        /* Crier Sans, and not DejaVu Sans beside it: it covers all DejaVu Sans does */
        assert_non_null(strstr(fonts, "+CrierSans "));
        assert_null(strstr(fonts, "DejaVuSans"));
        free(fonts);
        remove_file(path);
        free(body);
    }
}

/* sfnt_has - the TrueType file at path has a table tagged tag (its table directory) */
static bool sfnt_has(const char *path, const char tag[4])
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char head[12], record[16];
    assert_int_equal(fread(head, 1, sizeof(head), f), sizeof(head));
    int tables = head[4] << 8 | head[5];
    bool found = false;
    for (int i = 0; i < tables && !found; i++) {
        assert_int_equal(fread(record, 1, sizeof(record), f), sizeof(record));
        found = memcmp(record, tag, 4) == 0;
    }
    fclose(f);
    return found;
}

/*
 * test_fonts - letters are drawn in Crier Sans (channels/sans_font.py): DejaVu Sans with no
 * hinting left in it, and otherwise the same font, so a letter in it has every word where
 * the same letter in DejaVu Sans has it, in a smaller PDF.
 */
static void test_fonts(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    NEED_TOOL("pdffonts");
    const char *dir = letter_fonts_dir();
    assert_non_null(dir);
    const char *files[] = {"CrierSans.ttf", "CrierSans-Bold.ttf"};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        char *path = xasprintf("%s/%s", dir, files[i]);
        assert_false(sfnt_has(path, "fpgm")); /* no font program */
        assert_false(sfnt_has(path, "prep"));
        assert_false(sfnt_has(path, "cvt "));
        assert_true(sfnt_has(path, "glyf")); /* and still the outlines and the shaping */
        assert_true(sfnt_has(path, "GPOS"));
        assert_true(sfnt_has(path, "GSUB"));
        free(path);
    }

    struct letter_layout layout;
    letter_layout_default(&layout);
    assert_string_equal(layout.font_family, letter_font_families[0]);
    struct letter_input in;
    sample_input(&in);
    char *ours = render_file(&layout, &in, NULL);
    layout.font_family = letter_font_families[1]; /* crier before Crier Sans */
    char *dejavu = render_file(&layout, &in, NULL);
    char *fonts = run("pdffonts '%s'", dejavu);
    assert_non_null(strstr(fonts, "+DejaVuSans "));
    assert_null(strstr(fonts, "CrierSans"));
    free(fonts);

    struct word *a, *b;
    size_t na = pdf_words(ours, &a), nb = pdf_words(dejavu, &b);
    assert_true(na > 100);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].text, b[i].text) != 0 || a[i].page != b[i].page ||
            a[i].x_min != b[i].x_min || a[i].y_min != b[i].y_min || a[i].x_max != b[i].x_max ||
            a[i].y_max != b[i].y_max)
            fail_msg("word %zu: '%s' at %g,%g in Crier Sans, '%s' at %g,%g in DejaVu Sans", i,
                     a[i].text, a[i].x_min, a[i].y_min, b[i].text, b[i].x_min, b[i].y_min);
    free(a);
    free(b);
    struct stat sa, sb;
    assert_int_equal(stat(ours, &sa), 0);
    assert_int_equal(stat(dejavu, &sb), 0);
    assert_true(sa.st_size < sb.st_size * 3 / 4);
    remove_file(ours);
    remove_file(dejavu);
}

static void test_no_windows(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.windows = false;
    struct letter_input in;
    sample_input(&in);
    in.country = "PL";
    in.address[4] = "00-950";
    in.address[2] = "Warszawa";
    int pages = 0;
    char *path = render_file(&layout, &in, &pages);
    assert_int_equal(pages, 1);
    struct word *words;
    size_t count = pdf_words(path, &words);
    /* addresses from the top margin down, the body after them */
    double return_y = -1, name_y = -1, title_y = -1, poland_y = -1;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(words[i].text, "Privacy") == 0)
            return_y = words[i].y_min;
        if (strcmp(words[i].text, "Jane") == 0 && name_y < 0)
            name_y = words[i].y_min;
        if (strcmp(words[i].text, "POLAND") == 0)
            poland_y = words[i].y_min;
        if (strcmp(words[i].text, "Notice") == 0 && title_y < 0)
            title_y = words[i].y_min;
    }
    assert_true(return_y > layout.margin_top - 1 && return_y < 100);
    assert_true(name_y > return_y && poland_y > name_y && title_y > poland_y);
    assert_true(title_y < layout.body_top); /* the body starts higher than behind windows */
    free(words);
    remove_file(path);
}

static void test_deterministic(void **state)
{
    (void)state;
    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.fold_marks = true;
    struct letter_input in;
    sample_input(&in);
    char *body = long_body(12);
    in.body = body;
    in.name = "山田 太郎";
    unsigned char *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    int pages = 0;
    char err[200];
    assert_int_equal(letter_render_pdf(&layout, &in, &first, &first_len, &pages, err, sizeof(err)),
                     0);
    assert_int_equal(
        letter_render_pdf(&layout, &in, &second, &second_len, &pages, err, sizeof(err)), 0);
    assert_int_equal(first_len, second_len);
    assert_memory_equal(first, second, first_len);
    /* the creation date is the letter's date, not the clock */
    assert_non_null(memmem(first, first_len, "20261201000000", 14));
    free(first);
    free(second);
    free(body);
}

/* Many letters in one PDF, as a print batch makes them. */
static void test_batch(void **state)
{
    (void)state;
    NEED_TOOL("pdfinfo");
    NEED_TOOL("pdftotext");
    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.duplex = true;
    char *path = xstrdup("/tmp/crier-test-letter-batch-XXXXXX.pdf");
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    close(fd);
    cairo_surface_t *surface = cairo_pdf_surface_create(path, 612, 792);
    assert_int_equal(letter_pdf_metadata(surface, "2026-12-01"), 0);
    assert_int_equal(letter_pdf_metadata(surface, "2026-13-01"), -EINVAL);
    cairo_t *cr = cairo_create(surface);
    int total = 0;
    char *body = long_body(14);
    const char *names[] = {"Ann One", "Bob Two", "Cy Three"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        struct letter_input in;
        sample_input(&in);
        in.name = names[i];
        in.body = i == 1 ? body : sample_body;
        int pages = 0;
        char err[200];
        assert_int_equal(letter_render(cr, &layout, &in, &pages, err, sizeof(err)), 0);
        assert_int_equal(pages % 2, 0);
        total += pages;
    }
    /* a refused letter adds no page */
    struct letter_input bad;
    sample_input(&bad);
    bad.name = "Bad\nName";
    int pages = -1;
    char err[200];
    assert_int_equal(letter_render(cr, &layout, &bad, &pages, err, sizeof(err)), -EINVAL);
    assert_int_equal(pages, -1);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    assert_int_equal(cairo_surface_status(surface), CAIRO_STATUS_SUCCESS);
    cairo_surface_destroy(surface);
    assert_int_equal(pdf_pages(path), total);
    char *text = run("pdftotext -layout '%s' -", path);
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        assert_non_null(strstr(text, names[i]));
    free(text);
    remove_file(path);
    free(body);
}

/* words_of - pdftotext's words (with their boxes) on pages first..last, one per line. */
static char *words_of(const char *path, int first, int last)
{
    char *xml = run("pdftotext -bbox -f %d -l %d '%s' - | grep '<word'", first, last, path);
    return xml;
}

/* shared_body - a letter with one paragraph of its own and many it shares. */
/* words_match - the same words in the same order, each box within tolerance points (a
 * form's translation is written at 1/256 pt, so the same place may differ by that). */
static void words_match(const char *got, const char *want, double tolerance)
{
    while (*got != '\0' && *want != '\0') {
        if (*got == '"' && *want == '"') {
            char *got_end, *want_end;
            double a = strtod(got + 1, &got_end), b = strtod(want + 1, &want_end);
            if (got_end != got + 1 && want_end != want + 1) {
                if (a - b > tolerance || b - a > tolerance)
                    fail_msg("%g against %g at: %.80s", a, b, want);
                got = got_end;
                want = want_end;
                continue;
            }
        }
        if (*got != *want)
            fail_msg("words differ at: %.80s | %.80s", got, want);
        got++;
        want++;
    }
    assert_int_equal(*got, *want);
}

static char *shared_body(const char *name)
{
    char *common = long_body(14);
    char *body = xasprintf("# Notice of Data Breach\n\nDear %s,\n\n%s", name, common);
    free(common);
    return body;
}

/* shared_batch - names[0..count) drawn through one cache with forms into path; each
 * letter's page count in pages[]. */
static void shared_batch(const char *path, const struct letter_layout *layout,
                         const char *const *names, size_t count, int *pages)
{
    cairo_surface_t *surface = cairo_pdf_surface_create(path, 612, 792);
    assert_int_equal(letter_pdf_metadata(surface, "2026-12-01"), 0);
    cairo_t *cr = cairo_create(surface);
    struct letter_cache *cache = letter_cache_new(layout, true);
    for (size_t i = 0; i < count; i++) {
        struct letter_input in;
        sample_input(&in);
        in.name = names[i];
        char *body = shared_body(names[i]);
        in.body = body;
        char err[200];
        assert_int_equal(letter_render_cached(cr, cache, &in, &pages[i], err, sizeof(err)), 0);
        free(body);
    }
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    assert_int_equal(cairo_surface_status(surface), CAIRO_STATUS_SUCCESS);
    cairo_surface_destroy(surface);
    letter_cache_free(cache);
}

static size_t count_in_file(const char *path, const char *needle)
{
    char *n = run("grep -a -c -- '%s' '%s' || true", needle, path);
    size_t count = strtoul(n, NULL, 10);
    free(n);
    return count;
}

/* Shared blocks drawn once as forms: every page reads back word for word, at the same
 * places, as the same letter drawn alone without a cache; and the batch holds no more
 * forms for six letters than for three. */
static void test_shared_forms(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.fold_marks = true;
    const char *names[] = {"Ann One", "Bob Two", "Cy Three", "Dee Four", "Eve Five", "Flo Six"};
    int pages[ARRAY_SIZE(names)];
    char *six = xstrdup("/tmp/crier-test-letter-shared6-XXXXXX.pdf");
    char *three = xstrdup("/tmp/crier-test-letter-shared3-XXXXXX.pdf");
    int fd = mkstemps(six, 4);
    assert_true(fd >= 0);
    close(fd);
    fd = mkstemps(three, 4);
    assert_true(fd >= 0);
    close(fd);
    shared_batch(six, &layout, names, 6, pages);
    shared_batch(three, &layout, names, 3, pages);
    size_t forms_six = count_in_file(six, "/Subtype /Form");
    assert_true(forms_six > 3);
    assert_int_equal(forms_six, count_in_file(three, "/Subtype /Form"));

    int first = 1;
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        struct letter_input in;
        sample_input(&in);
        in.name = names[i];
        char *body = shared_body(names[i]);
        in.body = body;
        int alone_pages = 0;
        char *alone = render_file(&layout, &in, &alone_pages);
        assert_int_equal(alone_pages, pages[i]);
        assert_true(pages[i] >= 2); /* some blocks break across pages: drawn line by line */
        char *want = words_of(alone, 1, alone_pages);
        char *got = words_of(six, first, first + pages[i] - 1);
        words_match(got, want, 0.01);
        free(want);
        free(got);
        first += pages[i];
        remove_file(alone);
        free(body);
    }
    remove_file(six);
    remove_file(three);
}

/* Without forms, a cache changes no byte: a fax is what audit show renders again. */
static void test_cache_same_bytes(void **state)
{
    (void)state;
    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.windows = false;
    struct letter_cache *cache = letter_cache_new(&layout, false);
    const char *names[] = {"Ann One", "Bob Two", "Ann One"};
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        struct letter_input in;
        sample_input(&in);
        in.imb = NULL;
        in.name = names[i];
        char *body = shared_body(names[i]);
        in.body = body;
        unsigned char *cached = NULL, *alone = NULL;
        size_t cached_len = 0, alone_len = 0;
        int pages = 0;
        char err[200];
        assert_int_equal(
            letter_render_pdf_cached(cache, &in, &cached, &cached_len, &pages, err, sizeof(err)),
            0);
        assert_int_equal(
            letter_render_pdf(&layout, &in, &alone, &alone_len, &pages, err, sizeof(err)), 0);
        assert_int_equal(cached_len, alone_len);
        assert_memory_equal(cached, alone, alone_len);
        free(cached);
        free(alone);
        free(body);
    }
    letter_cache_free(cache);
}

static void test_refusals(void **state)
{
    (void)state;
    struct letter_layout layout;
    struct letter_input in;
    unsigned char *pdf = NULL;
    size_t len = 0;
    int pages = -1;
    char err[200];

    /* invalid UTF-8 and control characters in an address line */
    const char *bad_names[] = {"Bad \xff name", "Tab\there", "New\nline", "Del\x7f"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_names); i++) {
        letter_layout_default(&layout);
        sample_input(&in);
        in.name = bad_names[i];
        assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "name"));
    }
    sample_input(&in);
    in.address[2] = "Spring\rfield";
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "city"));
    sample_input(&in);
    in.body = "# Title\n\n\xc3\x28 broken\n";
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "body"));

    /* an address too long for the window, even at the smallest size */
    sample_input(&in);
    in.name = "Bartholomew Maximilian Featherstonehaugh-Cholmondeley-Worthington III";
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -ENOSPC);
    assert_non_null(strstr(err, "window"));
    /* ... which a fax, without windows, prints */
    layout.windows = false;
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)), 0);
    free(pdf);
    pdf = NULL;

    /* nobody to write to, and a return address longer than any window */
    sample_input(&in);
    in.name = NULL;
    for (size_t k = 0; k < 5; k++)
        in.address[k] = "";
    in.country = NULL;
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "no recipient"));
    static const char *const long_return[] = {"1", "2", "3", "4", "5", "6", "7", "8", "9", NULL};
    sample_input(&in);
    in.return_address = long_return;
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "return address"));

    /* a date that cannot be the PDF's creation date */
    letter_layout_default(&layout);
    sample_input(&in);
    in.date = "1 December 2026";
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -EINVAL);

    /* layouts */
    letter_layout_default(&layout);
    assert_int_equal(letter_layout_check(&layout, err, sizeof(err)), 0);
    layout.body_size = 0;
    assert_int_equal(letter_layout_check(&layout, err, sizeof(err)), -EINVAL);
    letter_layout_default(&layout);
    layout.recipient_box.x = 600;
    assert_int_equal(letter_layout_check(&layout, err, sizeof(err)), -EINVAL);
    letter_layout_default(&layout);
    layout.imb_height = 0.2 * 72;
    assert_int_equal(letter_layout_check(&layout, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "USPS-B-3200"));
    letter_layout_default(&layout);
    layout.address_min_size = 12;
    assert_int_equal(letter_layout_check(&layout, err, sizeof(err)), -EINVAL);
    letter_layout_default(&layout);
    layout.font_family = "";
    assert_int_equal(letter_layout_check(&layout, err, sizeof(err)), -EINVAL);
    letter_layout_default(&layout);
    layout.margin_left = 400;
    assert_int_equal(letter_layout_check(&layout, err, sizeof(err)), -EINVAL);
    sample_input(&in);
    pages = -1;
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)),
                     -EINVAL);
    assert_null(pdf);
    assert_int_equal(pages, -1);
}

/* Odd bodies: empty, headings only, a very long word, Windows line ends. */
static void test_odd_bodies(void **state)
{
    (void)state;
    NEED_TOOL("pdftotext");
    char long_word[3000];
    memset(long_word, 'x', sizeof(long_word) - 1);
    long_word[sizeof(long_word) - 1] = '\0';
    char *with_long_word = xasprintf("Before %s after\n", long_word);
    const char *bodies[] = {
        NULL,
        "",
        "\n\n\n",
        "# Only a title",
        "##\n#\n- \n-\n",
        "line one\r\nline two\r\n",
        with_long_word,
        "#not a heading\n-not a bullet\n   ## indented heading\n",
    };
    struct letter_layout layout;
    letter_layout_default(&layout);
    for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
        struct letter_input in;
        sample_input(&in);
        in.body = bodies[i];
        int pages = 0;
        char *path = render_file(&layout, &in, &pages);
        assert_true(pages >= 1);
        char *text = run("pdftotext '%s' -", path);
        assert_non_null(strstr(text, "Jane Q. Public"));
        if (i == 5)
            assert_non_null(strstr(text, "line one line two"));
        if (i == 6)
            assert_non_null(strstr(text, "after"));
        if (i == 7) {
            assert_non_null(strstr(text, "#not a heading -not a bullet"));
            assert_non_null(strstr(text, "indented heading"));
            assert_null(strstr(text, "## indented"));
        }
        free(text);
        remove_file(path);
    }
    free(with_long_word);
}

/* The sample a person looks at: left beside the test, with page 1 as a PNG. */
static void test_sample_artifact(void **state)
{
    (void)state;
    struct letter_layout layout;
    letter_layout_default(&layout);
    layout.fold_marks = true;
    layout.show_boxes = true;
    struct letter_input in;
    sample_input(&in);
    unsigned char *pdf = NULL;
    size_t len = 0;
    int pages = 0;
    char err[200];
    assert_int_equal(letter_render_pdf(&layout, &in, &pdf, &len, &pages, err, sizeof(err)), 0);
    FILE *file = fopen("letter-sample.pdf", "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(pdf, 1, len, file), len);
    assert_int_equal(fclose(file), 0);
    free(pdf);
    if (tool_available("pdftoppm"))
        free(run("pdftoppm -png -r 60 -f 1 -l 1 letter-sample.pdf letter-sample"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imb_input),
        cmocka_unit_test(test_imb_zint),
        cmocka_unit_test(test_imb_drawn),
        cmocka_unit_test(test_fonts),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_city_lines),
        cmocka_unit_test(test_long_body),
        cmocka_unit_test(test_duplex),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_international_names),
        cmocka_unit_test(test_no_windows),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_shared_forms),
        cmocka_unit_test(test_cache_same_bytes),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_odd_bodies),
        cmocka_unit_test(test_sample_artifact),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    /* drop pango's font map and cairo's caches, so a leak checker sees only what the
     * letters themselves left behind (fontconfig's own cache is in tests/lsan.supp) */
    pango_cairo_font_map_set_default(NULL);
    letter_fonts_free();
    cairo_debug_reset_static_data();
    return failed;
}
