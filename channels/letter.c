/*
 * letter.c - one notice as a printed or faxed letter: US Letter pages drawn with cairo,
 * text set by pango, the Intelligent Mail barcode encoded by zint.
 *
 * A letter is laid out once (Markdown blocks into pango layouts, lines onto pages) and
 * then drawn, so the footer can say "Page 1 of 3" before page 3 exists. Every check
 * happens before anything is drawn: a letter that cannot be made leaves the caller's
 * batch PDF untouched. Output depends only on the layout and the input (pango metrics
 * are unhinted, the PDF creation date comes from the letter), so the same notice always
 * gives the same bytes and an auditor can re-render it to prove what was sent.
 *
 * What many letters share (the return address, fixed paragraphs, footers) is shaped once
 * per letter cache, and in a batch drawn once as recording surfaces that cairo's PDF
 * backend writes as Form XObjects (letter.h): the same text at the same places, for a
 * fraction of the time and bytes.
 *
 * It must never log, never talk to the database, and never read a template: the caller
 * hands over the rendered body.
 *
 * SECURITY: names, addresses and the body come from the untrusted affected-individual
 * list. Address lines are set with pango_layout_set_text(), never as markup, and must be
 * valid UTF-8 without control characters; in the body, text is escaped with
 * g_markup_escape_text() before the only markup crier adds (<b> for **bold**) is put
 * around it, and control characters are turned into spaces first, so no value can
 * inject Pango markup or break the markup parser.
 */
#include "crier/letter.h"
#include "crier/crier.h"

#include <cairo-ft.h>
#include <cairo-pdf.h>
#include <errno.h>
#include <fontconfig/fontconfig.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include <glib.h>
#include <math.h>
#include <pango/pangocairo.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zint.h>

#define INCH                LETTER_POINTS_PER_INCH
#define IMB_MODULE          1.625          /* pt; a bar every 2 modules: 22.15 bars/inch */
#define IMB_HEIGHT_MIN      (0.156 * INCH) /* below this the tracker is under 0.039" */
#define IMB_HEIGHT_MAX      (0.165 * INCH) /* the full bar's maximum (USPS-B-3200) */
#define IMB_BARS_MAX        65             /* an IMb has 65 bars, whatever it encodes */
#define IMB_GAP             (0.028 * INCH) /* the barcode's clear zone above and below */
#define ADDRESS_SHRINK_STEP 0.5            /* points per try when an address must shrink */
#define RECIPIENT_LINES_MAX 6              /* name, 2 street lines, city line, country, NULL */
#define LIST_INDENT         1.4            /* a list item's text, in body sizes from the margin */
#define BULLET_AT           0.35           /* its bullet, in body sizes from the margin */
#define RETURN_LINES_MAX    8              /* lines of a return address that are drawn */
#define FOLD_MARK_LENGTH    (0.2 * INCH)
#define FOLD_MARK_FROM_EDGE (0.2 * INCH)

/* ---------------------------------------------------------------------------------- */
/* Layout */

void letter_layout_default(struct letter_layout *layout)
{
    /* The address boxes are PostalMethods' safe areas for a #10 double-window envelope
     * (docs/letters.md): inside them the text stays in the windows however the folded
     * sheet shifts in the envelope. */
    *layout = (struct letter_layout){
        .page_width = 8.5 * INCH,
        .page_height = 11 * INCH,
        .margin_top = 0.75 * INCH,
        .margin_bottom = 0.75 * INCH,
        .margin_left = 0.75 * INCH,
        .margin_right = 0.75 * INCH,
        .windows = true,
        .grid = true,
        .return_box = {0.5 * INCH, 0.5 * INCH, 3.5 * INCH, 0.792 * INCH},
        .recipient_box = {0.5 * INCH, 2.042 * INCH, 3.5 * INCH, 0.875 * INCH},
        .body_top = 3.375 * INCH,
        .font_family = letter_font_families[0],
        .body_size = 10,
        .title_size = 16,
        .heading_size = 12,
        .address_size = 10,
        .address_min_size = 8,
        .footer_size = 9,
        .imb_height = 0.16 * INCH,
        .imb_below = false,
        .fold_marks = false,
        .duplex = false,
        .show_boxes = false,
    };
}

static bool box_on_page(const struct letter_layout *layout, const struct letter_box *box)
{
    return box->x >= 0 && box->y >= 0 && box->width > 0 && box->height > 0 &&
           box->x + box->width <= layout->page_width && box->y + box->height <= layout->page_height;
}

int letter_layout_check(const struct letter_layout *layout, char *err, size_t err_size)
{
    const struct letter_layout *l = layout;
    if (l->page_width < 2 * INCH || l->page_height < 2 * INCH || l->page_width > 100 * INCH ||
        l->page_height > 100 * INCH)
        return error_set(err, err_size, -EINVAL, "page size %gx%g pt is out of range",
                         l->page_width, l->page_height);
    if (l->margin_top < 0 || l->margin_bottom < 0 || l->margin_left < 0 || l->margin_right < 0)
        return error_set(err, err_size, -EINVAL, "margins must not be negative");
    if (l->page_width - l->margin_left - l->margin_right < 3 * INCH ||
        l->page_height - l->margin_top - l->margin_bottom < 3 * INCH)
        return error_set(err, err_size, -EINVAL, "margins leave too little room for text");
    if (str_empty(l->font_family))
        return error_set(err, err_size, -EINVAL, "font family is empty");
    if (!(l->body_size >= 4 && l->body_size <= 72) ||
        !(l->title_size >= 4 && l->title_size <= 72) ||
        !(l->heading_size >= 4 && l->heading_size <= 72) ||
        !(l->footer_size >= 4 && l->footer_size <= 72))
        return error_set(err, err_size, -EINVAL, "font sizes must be between 4 and 72 pt");
    if (!(l->address_min_size >= 4 && l->address_min_size <= l->address_size &&
          l->address_size <= 72))
        return error_set(err, err_size, -EINVAL,
                         "address sizes must satisfy 4 <= address_min_size <= address_size <= 72");
    if (!l->windows)
        return 0;
    if (!box_on_page(l, &l->return_box))
        return error_set(err, err_size, -EINVAL, "return address box is not on the page");
    if (!box_on_page(l, &l->recipient_box))
        return error_set(err, err_size, -EINVAL, "recipient address box is not on the page");
    if (!(l->body_top >= 0 && l->body_top < l->page_height - l->margin_bottom - INCH))
        return error_set(err, err_size, -EINVAL, "body_top leaves no room for the body");
    if (!(l->imb_height >= IMB_HEIGHT_MIN - 0.01 && l->imb_height <= IMB_HEIGHT_MAX + 0.01))
        return error_set(err, err_size, -EINVAL,
                         "imb_height must be 0.156 to 0.165 inch (%.2f to %.2f pt) so that every "
                         "bar stays within USPS-B-3200",
                         IMB_HEIGHT_MIN, IMB_HEIGHT_MAX);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Intelligent Mail barcode */

static bool all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* imb_field - a required all-digit field of one of the allowed lengths (0 ends the list). */
static int imb_field(const char *name, const char *value, size_t len_a, size_t len_b, char *err,
                     size_t err_size)
{
    size_t len = value == NULL ? 0 : strlen(value);
    if (!all_digits(value == NULL ? "" : value, len))
        return error_set(err, err_size, -EINVAL, "IMb %s must be digits only", name);
    if (len != len_a && (len_b == 0 || len != len_b)) {
        if (len_b == 0)
            return error_set(err, err_size, -EINVAL, "IMb %s must be %zu digits, not %zu", name,
                             len_a, len);
        return error_set(err, err_size, -EINVAL, "IMb %s must be %zu or %zu digits, not %zu", name,
                         len_a, len_b, len);
    }
    return 0;
}

int letter_imb_input(const struct letter_imb *imb, char out[LETTER_IMB_INPUT_MAX], char *err,
                     size_t err_size)
{
    int r;
    if (imb == NULL)
        return error_set(err, err_size, -EINVAL, "no IMb fields");
    r = imb_field("barcode id", imb->barcode_id, 2, 0, err, err_size);
    if (r < 0)
        return r;
    if (imb->barcode_id[1] > '4')
        return error_set(err, err_size, -EINVAL,
                         "IMb barcode id's second digit must be 0 to 4, not %c",
                         imb->barcode_id[1]);
    r = imb_field("service type id", imb->service_type, 3, 0, err, err_size);
    if (r < 0)
        return r;
    r = imb_field("mailer id", imb->mailer_id, 6, 9, err, err_size);
    if (r < 0)
        return r;
    size_t serial_len = strlen(imb->mailer_id) == 6 ? 9 : 6;
    r = imb_field(serial_len == 9 ? "serial (with a 6-digit mailer id)"
                                  : "serial (with a 9-digit mailer id)",
                  imb->serial, serial_len, 0, err, err_size);
    if (r < 0)
        return r;

    /* The routing ZIP: 5, 9 or 11 digits; a ZIP+4 may be written 12345-6789. */
    char routing[12] = "";
    const char *zip = imb->routing_zip == NULL ? "" : imb->routing_zip;
    size_t zip_len = strlen(zip);
    if (zip_len == 10 && zip[5] == '-' && all_digits(zip, 5) && all_digits(zip + 6, 4)) {
        memcpy(routing, zip, 5);
        memcpy(routing + 5, zip + 6, 4);
        routing[9] = '\0';
    } else if (zip_len == 0 || zip_len == 5 || zip_len == 9 || zip_len == 11) {
        if (!all_digits(zip, zip_len))
            return error_set(err, err_size, -EINVAL, "IMb routing ZIP must be digits only");
        memcpy(routing, zip, zip_len + 1);
    } else {
        return error_set(err, err_size, -EINVAL,
                         "IMb routing ZIP must be empty or 5, 9 or 11 digits, not %zu", zip_len);
    }

    if (routing[0] == '\0')
        snprintf(out, LETTER_IMB_INPUT_MAX, "%s%s%s%s", imb->barcode_id, imb->service_type,
                 imb->mailer_id, imb->serial);
    else
        snprintf(out, LETTER_IMB_INPUT_MAX, "%s%s%s%s-%s", imb->barcode_id, imb->service_type,
                 imb->mailer_id, imb->serial, routing);
    return 0;
}

/* imb_encode - zint's symbol for the fields, with its vector (rectangles) made. */
static int imb_encode(const struct letter_imb *imb, struct zint_symbol **ret_symbol, char *err,
                      size_t err_size)
{
    char input[LETTER_IMB_INPUT_MAX];
    int r = letter_imb_input(imb, input, err, err_size);
    if (r < 0)
        return r;
    struct zint_symbol *symbol = ZBarcode_Create();
    if (symbol == NULL)
        abort(); /* zint's only failure here is malloc */
    symbol->symbology = BARCODE_USPS_IMAIL;
    symbol->input_mode = DATA_MODE;
    symbol->show_hrt = 0;
    int status = ZBarcode_Encode(symbol, (const unsigned char *)input, (int)strlen(input));
    if (status < ZINT_ERROR)
        status = ZBarcode_Buffer_Vector(symbol, 0);
    if (status >= ZINT_ERROR || symbol->vector == NULL || symbol->width <= 0 ||
        symbol->vector->width <= 0 || symbol->vector->height <= 0) {
        r = error_set(err, err_size, -EINVAL, "IMb '%s': zint: %s", input, symbol->errtxt);
        ZBarcode_Delete(symbol);
        return r;
    }
    *ret_symbol = symbol;
    return 0;
}

/* quarter_point - v rounded to the nearest quarter point: a position cairo writes short. */
static double quarter_point(double v)
{
    return round(v * 4) / 4;
}

/* imb_width - the drawn barcode's width in points: 129 modules of IMB_MODULE. */
static double imb_width(const struct zint_symbol *symbol)
{
    return symbol->width * IMB_MODULE;
}

/* The bars' font (channels/imb_font.py, made at build time into imb_font.c). */
extern const unsigned char imb_font_ttf[];
extern const size_t imb_font_ttf_size;

/* Its glyph ids, by the bar's top and bottom in sixteenths of the full bar from its top:
 * zint's four states, in imb_font.py's order. */
static const struct imb_glyph {
    int top, bottom;
    unsigned long glyph;
} imb_glyphs[] = {
    {0, 16, 1}, /* full */
    {0, 10, 2}, /* ascender */
    {6, 16, 3}, /* descender */
    {6, 10, 4}, /* tracker */
};

static pthread_mutex_t imb_font_lock = PTHREAD_MUTEX_INITIALIZER;
static bool imb_font_tried;                    /* under the lock, with the two below */
static cairo_font_face_t *imb_font_face;       /* NULL when FreeType cannot read the font */
static cairo_font_options_t *imb_font_options; /* unhinted: the outlines as they are */
static atomic_bool imb_rectangles;             /* letter_imb_rectangles(): the fallback */

struct imb_font_ft {
    FT_Library library; /* serves this face alone */
    FT_Face face;
};

static const cairo_user_data_key_t imb_font_key;

static void imb_font_ft_free(void *p)
{
    struct imb_font_ft *ft = p;
    FT_Done_Face(ft->face);
    FT_Done_FreeType(ft->library);
    free(ft);
}

/*
 * imb_font_load - the bars' font face, made once per process and kept: cairo takes the
 * FT_Face's lock (its unscaled font's mutex) whenever it reads the face, so every lane
 * can draw with it. The face goes with cairo's last reference (its user data frees it).
 */
static void imb_font_load(void)
{
    struct imb_font_ft *ft = xcalloc(1, sizeof(*ft));
    if (FT_Init_FreeType(&ft->library) != 0) {
        free(ft);
        return;
    }
    if (FT_New_Memory_Face(ft->library, imb_font_ttf, (FT_Long)imb_font_ttf_size, 0, &ft->face) !=
        0) {
        FT_Done_FreeType(ft->library);
        free(ft);
        return;
    }
    cairo_font_face_t *face = cairo_ft_font_face_create_for_ft_face(ft->face, FT_LOAD_NO_HINTING);
    if (cairo_font_face_status(face) != CAIRO_STATUS_SUCCESS ||
        cairo_font_face_set_user_data(face, &imb_font_key, ft, imb_font_ft_free) !=
            CAIRO_STATUS_SUCCESS) {
        cairo_font_face_destroy(face);
        imb_font_ft_free(ft);
        return;
    }
    imb_font_options = cairo_font_options_create();
    cairo_font_options_set_hint_style(imb_font_options, CAIRO_HINT_STYLE_NONE);
    cairo_font_options_set_hint_metrics(imb_font_options, CAIRO_HINT_METRICS_OFF);
    imb_font_face = face;
}

/* imb_font - the bars' font face (loaded at the first barcode), NULL if it cannot be. */
static cairo_font_face_t *imb_font(void)
{
    pthread_mutex_lock(&imb_font_lock);
    if (!imb_font_tried) {
        imb_font_load();
        imb_font_tried = true;
    }
    cairo_font_face_t *face = imb_font_face;
    pthread_mutex_unlock(&imb_font_lock);
    return face;
}

void letter_imb_rectangles(bool on)
{
    atomic_store(&imb_rectangles, on);
}

void letter_fonts_free(void)
{
    pthread_mutex_lock(&imb_font_lock);
    if (imb_font_face != NULL) {
        cairo_font_face_destroy(imb_font_face);
        cairo_font_options_destroy(imb_font_options);
    }
    imb_font_face = NULL;
    imb_font_options = NULL;
    imb_font_tried = false;
    pthread_mutex_unlock(&imb_font_lock);
}

/*
 * imb_glyph_run - zint's rectangles as the font's glyphs, one a bar, with the bars'
 * baseline (the full bar's bottom) at baseline. zint draws a bar as one to three
 * rectangles (it goes row by row), so each bar's extent is gathered first: its rectangles
 * must stack without a gap. False when zint drew anything the four glyphs do not match
 * exactly (a bar of another shape or width, or one off the pitch).
 */
static bool imb_glyph_run(const struct zint_symbol *symbol, double x, double baseline,
                          cairo_glyph_t glyphs[IMB_BARS_MAX], int *ret_n)
{
    double unit = symbol->vector->width / symbol->width; /* vector units per module */
    double sixteenth = symbol->vector->height / 16;
    double top[IMB_BARS_MAX], bottom[IMB_BARS_MAX], covered[IMB_BARS_MAX];
    int n = 0;
    for (const struct zint_vector_rect *rect = symbol->vector->rectangles; rect != NULL;
         rect = rect->next) {
        if (rect->colour > 0 && rect->colour != 7)
            continue; /* only foreground (black) bars; zint draws no background for IMb */
        double bar = rect->x / (2 * unit);
        if (rect->width != unit || bar != floor(bar) || bar < 0 || bar >= IMB_BARS_MAX)
            return false;
        int i = (int)bar;
        for (; n <= i; n++) {
            top[n] = 16;
            bottom[n] = covered[n] = 0;
        }
        top[i] = fmin(top[i], rect->y / sixteenth);
        bottom[i] = fmax(bottom[i], (rect->y + rect->height) / sixteenth);
        covered[i] += rect->height / sixteenth;
    }
    for (int i = 0; i < n; i++) {
        const struct imb_glyph *g = NULL;
        for (size_t k = 0; k < ARRAY_SIZE(imb_glyphs) && g == NULL; k++)
            if (top[i] == imb_glyphs[k].top && bottom[i] == imb_glyphs[k].bottom &&
                covered[i] == bottom[i] - top[i])
                g = &imb_glyphs[k];
        if (g == NULL)
            return false; /* no rectangle there, a gap, or a shape the font lacks */
        glyphs[i].index = g->glyph;
        glyphs[i].x = x + i * 2 * IMB_MODULE;
        glyphs[i].y = baseline;
    }
    *ret_n = n;
    return n > 0;
}

/*
 * imb_draw - the barcode in vector form (not a bitmap), top-left at x, y: zint's bars as
 * one run of glyphs from crier's own bar font (channels/imb_font.py), scaled so that one
 * em across is the pitch and one em up is the full bar, as USPS's IMb fonts draw it.
 * cairo writes the run as one string of 65 glyph codes in one text object, where the 65
 * bars as filled rectangles cost it four formatted numbers each, twice (it replays a page
 * once to analyse it and once to write it): a quarter of a batch letter's instructions
 * (docs/benchmarks.md, "The IMb as glyphs"). The font maps no character to its glyphs,
 * so the barcode adds nothing to the page's text. Should zint draw a bar the font does
 * not have, or the font not load, the bars are filled rectangles as before.
 *
 * Stop 32 tried one 1-bit stencil instead, and kept rectangles: a print house's preflight
 * checks image masks as 1-bit images (550-1200 ppi is the usual floor) and would flag a
 * 44 ppi one on every letter ("The IMb as one stencil"). An embedded TrueType font is
 * what preflight expects of text and of barcode fonts alike.
 *
 * The bars stand on quarter points across: a module of 1.625 pt (a pitch of 3.25 pt, 22.15
 * bars an inch, where USPS-B-3200 takes 20 to 24) from an origin rounded to 0.25 pt. The
 * heights are exact: the font's edges are whole sixteenths of the full bar.
 */
static void imb_draw(cairo_t *cr, const struct zint_symbol *symbol, double x, double y,
                     double height)
{
    x = quarter_point(x);
    y = quarter_point(y);
    cairo_glyph_t glyphs[IMB_BARS_MAX];
    int n = 0;
    cairo_font_face_t *font = atomic_load(&imb_rectangles) ? NULL : imb_font();
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (font != NULL && imb_glyph_run(symbol, x, y + height, glyphs, &n)) {
        cairo_matrix_t scale;
        cairo_matrix_init_scale(&scale, 2 * IMB_MODULE, height);
        cairo_set_font_face(cr, font);
        cairo_set_font_matrix(cr, &scale);
        cairo_set_font_options(cr, imb_font_options);
        cairo_text_cluster_t none = {.num_bytes = 0, .num_glyphs = n};
        cairo_show_text_glyphs(cr, "", 0, glyphs, n, &none, 1, 0);
    } else {
        double unit = symbol->vector->width / symbol->width;
        double scale_x = IMB_MODULE / unit, scale_y = height / symbol->vector->height;
        for (const struct zint_vector_rect *rect = symbol->vector->rectangles; rect != NULL;
             rect = rect->next) {
            if (rect->colour > 0 && rect->colour != 7)
                continue;
            cairo_rectangle(cr, x + rect->x * scale_x, y + rect->y * scale_y, rect->width * scale_x,
                            rect->height * scale_y);
            cairo_fill(cr);
        }
    }
    cairo_restore(cr);
}

/* ---------------------------------------------------------------------------------- */
/* Countries */

/* ISO 3166-1 alpha-2 to the English name printed on the last line of a foreign address,
 * in capitals (from Debian's iso-codes, common names preferred). Sorted for bsearch. */
static const struct country_name {
    char code[3];
    const char *name;
} country_names[] = {
    {"AD", "ANDORRA"},
    {"AE", "UNITED ARAB EMIRATES"},
    {"AF", "AFGHANISTAN"},
    {"AG", "ANTIGUA AND BARBUDA"},
    {"AI", "ANGUILLA"},
    {"AL", "ALBANIA"},
    {"AM", "ARMENIA"},
    {"AO", "ANGOLA"},
    {"AQ", "ANTARCTICA"},
    {"AR", "ARGENTINA"},
    {"AS", "AMERICAN SAMOA"},
    {"AT", "AUSTRIA"},
    {"AU", "AUSTRALIA"},
    {"AW", "ARUBA"},
    {"AX", "ÅLAND ISLANDS"},
    {"AZ", "AZERBAIJAN"},
    {"BA", "BOSNIA AND HERZEGOVINA"},
    {"BB", "BARBADOS"},
    {"BD", "BANGLADESH"},
    {"BE", "BELGIUM"},
    {"BF", "BURKINA FASO"},
    {"BG", "BULGARIA"},
    {"BH", "BAHRAIN"},
    {"BI", "BURUNDI"},
    {"BJ", "BENIN"},
    {"BL", "SAINT BARTHÉLEMY"},
    {"BM", "BERMUDA"},
    {"BN", "BRUNEI"},
    {"BO", "BOLIVIA"},
    {"BQ", "CARIBBEAN NETHERLANDS"},
    {"BR", "BRAZIL"},
    {"BS", "BAHAMAS"},
    {"BT", "BHUTAN"},
    {"BV", "BOUVET ISLAND"},
    {"BW", "BOTSWANA"},
    {"BY", "BELARUS"},
    {"BZ", "BELIZE"},
    {"CA", "CANADA"},
    {"CC", "COCOS ISLANDS"},
    {"CD", "DEMOCRATIC REPUBLIC OF THE CONGO"},
    {"CF", "CENTRAL AFRICAN REPUBLIC"},
    {"CG", "REPUBLIC OF THE CONGO"},
    {"CH", "SWITZERLAND"},
    {"CI", "CÔTE D'IVOIRE"},
    {"CK", "COOK ISLANDS"},
    {"CL", "CHILE"},
    {"CM", "CAMEROON"},
    {"CN", "CHINA"},
    {"CO", "COLOMBIA"},
    {"CR", "COSTA RICA"},
    {"CU", "CUBA"},
    {"CV", "CABO VERDE"},
    {"CW", "CURAÇAO"},
    {"CX", "CHRISTMAS ISLAND"},
    {"CY", "CYPRUS"},
    {"CZ", "CZECH REPUBLIC"},
    {"DE", "GERMANY"},
    {"DJ", "DJIBOUTI"},
    {"DK", "DENMARK"},
    {"DM", "DOMINICA"},
    {"DO", "DOMINICAN REPUBLIC"},
    {"DZ", "ALGERIA"},
    {"EC", "ECUADOR"},
    {"EE", "ESTONIA"},
    {"EG", "EGYPT"},
    {"EH", "WESTERN SAHARA"},
    {"ER", "ERITREA"},
    {"ES", "SPAIN"},
    {"ET", "ETHIOPIA"},
    {"FI", "FINLAND"},
    {"FJ", "FIJI"},
    {"FK", "FALKLAND ISLANDS"},
    {"FM", "MICRONESIA"},
    {"FO", "FAROE ISLANDS"},
    {"FR", "FRANCE"},
    {"GA", "GABON"},
    {"GB", "UNITED KINGDOM"},
    {"GD", "GRENADA"},
    {"GE", "GEORGIA"},
    {"GF", "FRENCH GUIANA"},
    {"GG", "GUERNSEY"},
    {"GH", "GHANA"},
    {"GI", "GIBRALTAR"},
    {"GL", "GREENLAND"},
    {"GM", "GAMBIA"},
    {"GN", "GUINEA"},
    {"GP", "GUADELOUPE"},
    {"GQ", "EQUATORIAL GUINEA"},
    {"GR", "GREECE"},
    {"GS", "SOUTH GEORGIA AND THE SOUTH SANDWICH ISLANDS"},
    {"GT", "GUATEMALA"},
    {"GU", "GUAM"},
    {"GW", "GUINEA-BISSAU"},
    {"GY", "GUYANA"},
    {"HK", "HONG KONG"},
    {"HM", "HEARD ISLAND AND MCDONALD ISLANDS"},
    {"HN", "HONDURAS"},
    {"HR", "CROATIA"},
    {"HT", "HAITI"},
    {"HU", "HUNGARY"},
    {"ID", "INDONESIA"},
    {"IE", "IRELAND"},
    {"IL", "ISRAEL"},
    {"IM", "ISLE OF MAN"},
    {"IN", "INDIA"},
    {"IO", "BRITISH INDIAN OCEAN TERRITORY"},
    {"IQ", "IRAQ"},
    {"IR", "IRAN"},
    {"IS", "ICELAND"},
    {"IT", "ITALY"},
    {"JE", "JERSEY"},
    {"JM", "JAMAICA"},
    {"JO", "JORDAN"},
    {"JP", "JAPAN"},
    {"KE", "KENYA"},
    {"KG", "KYRGYZSTAN"},
    {"KH", "CAMBODIA"},
    {"KI", "KIRIBATI"},
    {"KM", "COMOROS"},
    {"KN", "SAINT KITTS AND NEVIS"},
    {"KP", "NORTH KOREA"},
    {"KR", "SOUTH KOREA"},
    {"KW", "KUWAIT"},
    {"KY", "CAYMAN ISLANDS"},
    {"KZ", "KAZAKHSTAN"},
    {"LA", "LAOS"},
    {"LB", "LEBANON"},
    {"LC", "SAINT LUCIA"},
    {"LI", "LIECHTENSTEIN"},
    {"LK", "SRI LANKA"},
    {"LR", "LIBERIA"},
    {"LS", "LESOTHO"},
    {"LT", "LITHUANIA"},
    {"LU", "LUXEMBOURG"},
    {"LV", "LATVIA"},
    {"LY", "LIBYA"},
    {"MA", "MOROCCO"},
    {"MC", "MONACO"},
    {"MD", "MOLDOVA"},
    {"ME", "MONTENEGRO"},
    {"MF", "SAINT MARTIN"},
    {"MG", "MADAGASCAR"},
    {"MH", "MARSHALL ISLANDS"},
    {"MK", "NORTH MACEDONIA"},
    {"ML", "MALI"},
    {"MM", "MYANMAR"},
    {"MN", "MONGOLIA"},
    {"MO", "MACAO"},
    {"MP", "NORTHERN MARIANA ISLANDS"},
    {"MQ", "MARTINIQUE"},
    {"MR", "MAURITANIA"},
    {"MS", "MONTSERRAT"},
    {"MT", "MALTA"},
    {"MU", "MAURITIUS"},
    {"MV", "MALDIVES"},
    {"MW", "MALAWI"},
    {"MX", "MEXICO"},
    {"MY", "MALAYSIA"},
    {"MZ", "MOZAMBIQUE"},
    {"NA", "NAMIBIA"},
    {"NC", "NEW CALEDONIA"},
    {"NE", "NIGER"},
    {"NF", "NORFOLK ISLAND"},
    {"NG", "NIGERIA"},
    {"NI", "NICARAGUA"},
    {"NL", "NETHERLANDS"},
    {"NO", "NORWAY"},
    {"NP", "NEPAL"},
    {"NR", "NAURU"},
    {"NU", "NIUE"},
    {"NZ", "NEW ZEALAND"},
    {"OM", "OMAN"},
    {"PA", "PANAMA"},
    {"PE", "PERU"},
    {"PF", "FRENCH POLYNESIA"},
    {"PG", "PAPUA NEW GUINEA"},
    {"PH", "PHILIPPINES"},
    {"PK", "PAKISTAN"},
    {"PL", "POLAND"},
    {"PM", "SAINT PIERRE AND MIQUELON"},
    {"PN", "PITCAIRN"},
    {"PR", "PUERTO RICO"},
    {"PS", "PALESTINE"},
    {"PT", "PORTUGAL"},
    {"PW", "PALAU"},
    {"PY", "PARAGUAY"},
    {"QA", "QATAR"},
    {"RE", "RÉUNION"},
    {"RO", "ROMANIA"},
    {"RS", "SERBIA"},
    {"RU", "RUSSIA"},
    {"RW", "RWANDA"},
    {"SA", "SAUDI ARABIA"},
    {"SB", "SOLOMON ISLANDS"},
    {"SC", "SEYCHELLES"},
    {"SD", "SUDAN"},
    {"SE", "SWEDEN"},
    {"SG", "SINGAPORE"},
    {"SH", "SAINT HELENA"},
    {"SI", "SLOVENIA"},
    {"SJ", "SVALBARD AND JAN MAYEN"},
    {"SK", "SLOVAKIA"},
    {"SL", "SIERRA LEONE"},
    {"SM", "SAN MARINO"},
    {"SN", "SENEGAL"},
    {"SO", "SOMALIA"},
    {"SR", "SURINAME"},
    {"SS", "SOUTH SUDAN"},
    {"ST", "SAO TOME AND PRINCIPE"},
    {"SV", "EL SALVADOR"},
    {"SX", "SINT MAARTEN"},
    {"SY", "SYRIA"},
    {"SZ", "ESWATINI"},
    {"TC", "TURKS AND CAICOS ISLANDS"},
    {"TD", "CHAD"},
    {"TF", "FRENCH SOUTHERN TERRITORIES"},
    {"TG", "TOGO"},
    {"TH", "THAILAND"},
    {"TJ", "TAJIKISTAN"},
    {"TK", "TOKELAU"},
    {"TL", "TIMOR-LESTE"},
    {"TM", "TURKMENISTAN"},
    {"TN", "TUNISIA"},
    {"TO", "TONGA"},
    {"TR", "TURKEY"},
    {"TT", "TRINIDAD AND TOBAGO"},
    {"TV", "TUVALU"},
    {"TW", "TAIWAN"},
    {"TZ", "TANZANIA"},
    {"UA", "UKRAINE"},
    {"UG", "UGANDA"},
    {"UM", "UNITED STATES MINOR OUTLYING ISLANDS"},
    {"US", "UNITED STATES"},
    {"UY", "URUGUAY"},
    {"UZ", "UZBEKISTAN"},
    {"VA", "VATICAN CITY"},
    {"VC", "SAINT VINCENT AND THE GRENADINES"},
    {"VE", "VENEZUELA"},
    {"VG", "BRITISH VIRGIN ISLANDS"},
    {"VI", "U.S. VIRGIN ISLANDS"},
    {"VN", "VIETNAM"},
    {"VU", "VANUATU"},
    {"WF", "WALLIS AND FUTUNA"},
    {"WS", "SAMOA"},
    {"YE", "YEMEN"},
    {"YT", "MAYOTTE"},
    {"ZA", "SOUTH AFRICA"},
    {"ZM", "ZAMBIA"},
    {"ZW", "ZIMBABWE"},
};

/* Delivered by USPS as domestic mail: no country line (the territories have ZIP codes and
 * USPS state codes; FM, MH and PW are freely associated states served the same way). */
static const char domestic_codes[][3] = {"AS", "FM", "GU", "MH", "MP",
                                         "PR", "PW", "UM", "US", "VI"};

/* Countries whose postal code goes before the city on the city line (UPU address formats). */
static const char code_first_countries[][3] = {
    "AT", "BE", "CH", "CZ", "DE", "DK", "ES", "FI", "FR", "GR",
    "IS", "IT", "LU", "NL", "NO", "PL", "PT", "SE", "SK",
};

static int country_compare(const void *key, const void *item)
{
    return strcmp(key, ((const struct country_name *)item)->code);
}

static int code_compare(const void *key, const void *item)
{
    return strcmp(key, item);
}

static bool code_in(const char *code, const char (*list)[3], size_t count)
{
    if (code == NULL || strlen(code) != 2)
        return false;
    return bsearch(code, list, count, sizeof(list[0]), code_compare) != NULL;
}

static bool country_domestic(const char *country)
{
    return str_empty(country) || code_in(country, domestic_codes, ARRAY_SIZE(domestic_codes));
}

/* country_line - the country's name in capitals (a code crier does not know prints as
 * given, in capitals). Returns a g_malloc'd string. */
static char *country_line(const char *country)
{
    const struct country_name *found = NULL;
    if (strlen(country) == 2)
        found = bsearch(country, country_names, ARRAY_SIZE(country_names), sizeof(country_names[0]),
                        country_compare);
    return g_utf8_strup(found != NULL ? found->name : country, -1);
}

/* ---------------------------------------------------------------------------------- */
/* Input checks */

/* text_line_ok - valid UTF-8 with no control characters: safe to print as one line. */
static bool text_line_ok(const char *s)
{
    if (s == NULL)
        return true;
    size_t len = strlen(s);
    if (!utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

static int input_check(const struct letter_input *in, char *err, size_t err_size)
{
    static const char *const address_names[5] = {"address1", "address2", "city", "region",
                                                 "postal_code"};
    if (!text_line_ok(in->name))
        return error_set(err, err_size, -EINVAL, "name: invalid UTF-8 or a control character");
    for (size_t i = 0; i < 5; i++)
        if (!text_line_ok(in->address[i]))
            return error_set(err, err_size, -EINVAL, "%s: invalid UTF-8 or a control character",
                             address_names[i]);
    if (!text_line_ok(in->country) || !text_line_ok(in->date))
        return error_set(err, err_size, -EINVAL,
                         "country or date: invalid UTF-8 or a control character");
    if (in->return_address != NULL)
        for (size_t i = 0; in->return_address[i] != NULL; i++)
            if (!text_line_ok(in->return_address[i]))
                return error_set(err, err_size, -EINVAL,
                                 "return address line %zu: invalid UTF-8 or a control character",
                                 i + 1);
    if (in->body != NULL && !utf8_valid(in->body, strlen(in->body)))
        return error_set(err, err_size, -EINVAL, "body: invalid UTF-8");
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Markdown subset */

enum block_kind {
    BLOCK_TITLE,     /* "# text" */
    BLOCK_HEADING,   /* "## text" (and deeper levels) */
    BLOCK_PARAGRAPH, /* lines up to a blank line, joined with spaces */
    BLOCK_BULLET,    /* "- text", with its continuation lines */
};

struct block {
    enum block_kind kind;
    GString *text; /* the source text of the block, lines joined with single spaces */
};

struct block_list {
    struct block *items;
    size_t count, capacity;
};

static void block_list_clear(struct block_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        g_string_free(list->items[i].text, TRUE);
    free(list->items);
    *list = (struct block_list){0};
}

static struct block *block_add(struct block_list *list, enum block_kind kind)
{
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? 2 * list->capacity : 32;
        list->items = xreallocarray(list->items, list->capacity, sizeof(list->items[0]));
    }
    struct block *block = &list->items[list->count++];
    block->kind = kind;
    block->text = g_string_new(NULL);
    return block;
}

/* append_text - add len bytes of a source line, control characters as spaces. */
static void append_text(GString *text, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        g_string_append_c(text, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t')
            return false;
    return true;
}

/* markdown_parse - split the body into blocks. Never fails: anything that is not a
 * heading or a bullet is paragraph text. */
static void markdown_parse(const char *body, struct block_list *list)
{
    struct block *open = NULL; /* paragraph or bullet still taking lines */
    const char *p = body == NULL ? "" : body;
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        size_t len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        const char *next = eol != NULL ? eol + 1 : p + len;
        while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        size_t indent = 0;
        while (indent < len && (p[indent] == ' ' || p[indent] == '\t'))
            indent++;
        const char *line = p + indent;
        size_t line_len = len - indent;

        size_t hashes = 0;
        while (hashes < line_len && line[hashes] == '#')
            hashes++;

        if (is_blank(line, line_len)) {
            open = NULL;
        } else if (hashes > 0 && hashes <= 6 && (hashes == line_len || line[hashes] == ' ')) {
            struct block *b = block_add(list, hashes == 1 ? BLOCK_TITLE : BLOCK_HEADING);
            size_t skip = hashes;
            while (skip < line_len && line[skip] == ' ')
                skip++;
            append_text(b->text, line + skip, line_len - skip);
            open = NULL;
        } else if (line_len >= 2 && line[0] == '-' && line[1] == ' ') {
            open = block_add(list, BLOCK_BULLET);
            size_t skip = 2;
            while (skip < line_len && line[skip] == ' ')
                skip++;
            append_text(open->text, line + skip, line_len - skip);
        } else {
            if (open == NULL)
                open = block_add(list, BLOCK_PARAGRAPH);
            else
                g_string_append_c(open->text, ' ');
            append_text(open->text, line, line_len);
        }
        p = next;
    }
}

/* escapable - the characters a backslash makes literal: \\ \* \# \- */
static bool escapable(char c)
{
    return c == '\\' || c == '*' || c == '#' || c == '-';
}

/* mark_after - the next "**" at or after s that is not escaped, or NULL. */
static const char *mark_after(const char *s)
{
    for (; *s != '\0'; s++) {
        if (s[0] == '\\' && escapable(s[1]))
            s++;
        else if (s[0] == '*' && s[1] == '*')
            return s;
    }
    return NULL;
}

/* closer_after - the next "**" that can close bold: one with no space just before it. */
static const char *closer_after(const char *s)
{
    for (const char *c = mark_after(s); c != NULL; c = mark_after(c + 1))
        if (c > s && c[-1] != ' ')
            return c;
    return NULL;
}

/* append_escaped - len bytes of text (-1: up to the NUL), backslash escapes resolved, as
 * Pango markup. */
static void append_escaped(GString *out, const char *s, gssize len)
{
    size_t n = len < 0 ? strlen(s) : (size_t)len;
    GString *plain = g_string_sized_new(n);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n && escapable(s[i + 1]))
            i++;
        g_string_append_c(plain, s[i]);
    }
    char *escaped = g_markup_escape_text(plain->str, (gssize)plain->len);
    g_string_append(out, escaped);
    g_free(escaped);
    g_string_free(plain, TRUE);
}

/*
 * inline_markup - escaped Pango markup for a block's text: **x** becomes <b>x</b>. As in
 * CommonMark, "**" opens only before a non-space and closes only after one; any other
 * "**" (2 ** 3, a stray one) is printed as it is, and so is an escaped one (\*\*: how
 * values from the list reach a letter). Returns a g_malloc'd string.
 */
static char *inline_markup(const char *text)
{
    GString *out = g_string_new(NULL);
    const char *start = text; /* first byte not yet copied */
    const char *p = text;
    for (const char *mark = mark_after(p); mark != NULL; mark = mark_after(p)) {
        const char *close = NULL;
        if (mark[2] != '\0' && mark[2] != ' ')
            close = closer_after(mark + 2);
        if (close == NULL) {
            p = mark + 1;
            continue;
        }
        append_escaped(out, start, mark - start);
        g_string_append(out, "<b>");
        append_escaped(out, mark + 2, close - (mark + 2));
        g_string_append(out, "</b>");
        start = p = close + 2;
    }
    append_escaped(out, start, -1);
    return g_string_free(out, FALSE);
}

/* ---------------------------------------------------------------------------------- */
/* Setting text */

static PangoFontDescription *font_new(const char *family, double size, bool bold)
{
    PangoFontDescription *font = pango_font_description_new();
    pango_font_description_set_family(font, family);
    pango_font_description_set_weight(font, bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
    /* absolute: one point is one unit of the PDF's user space, whatever the resolution */
    pango_font_description_set_absolute_size(font, size * PANGO_SCALE);
    return font;
}

static PangoLayout *layout_new(PangoContext *context, const char *family, double size, bool bold)
{
    PangoLayout *layout = pango_layout_new(context);
    PangoFontDescription *font = font_new(family, size, bold);
    pango_layout_set_font_description(layout, font);
    pango_font_description_free(font);
    return layout;
}

/* layout_size - a layout's logical width and height in points. */
static void layout_size(PangoLayout *layout, double *ret_width, double *ret_height)
{
    PangoRectangle logical;
    pango_layout_get_extents(layout, NULL, &logical);
    *ret_width = (double)(logical.x + logical.width) / PANGO_SCALE;
    *ret_height = (double)(logical.y + logical.height) / PANGO_SCALE;
}

/*
 * address_fit - the lines as one layout, no wider than max_width and no taller than
 * max_height, at address_size or smaller down to address_min_size. -ENOSPC when even
 * the smallest size does not fit.
 */
static int address_fit(PangoContext *context, const struct letter_layout *l,
                       const char *const *lines, double max_width, double max_height,
                       PangoLayout **ret_layout, double *ret_height)
{
    GString *text = g_string_new(NULL);
    for (size_t i = 0; lines[i] != NULL; i++) {
        if (i > 0)
            g_string_append_c(text, '\n');
        g_string_append(text, lines[i]);
    }
    /* no ligatures: a sorting machine's OCR reads "fi" as two letters more reliably */
    PangoAttrList *attributes = pango_attr_list_new();
    pango_attr_list_insert(attributes, pango_attr_font_features_new("liga 0, clig 0"));
    int r = -ENOSPC;
    for (double size = l->address_size; size >= l->address_min_size - 0.001;
         size -= ADDRESS_SHRINK_STEP) {
        PangoLayout *layout = layout_new(context, l->font_family, size, false);
        pango_layout_set_text(layout, text->str, (int)text->len);
        pango_layout_set_attributes(layout, attributes);
        double width, height;
        layout_size(layout, &width, &height);
        if (width <= max_width + 0.001 && height <= max_height + 0.001) {
            *ret_layout = layout;
            *ret_height = height;
            r = 0;
            break;
        }
        g_object_unref(layout);
    }
    pango_attr_list_unref(attributes);
    g_string_free(text, TRUE);
    return r;
}

/* city_line - "City, ST 12345" at home; abroad the UPU order of the country. */
static char *city_line(const struct letter_input *in, bool domestic)
{
    const char *city = in->address[2], *region = in->address[3], *postal = in->address[4];
    GString *line = g_string_new(NULL);
    if (domestic) {
        if (str_empty(region) && !str_empty(in->country) && strcmp(in->country, "US") != 0)
            region = in->country; /* a territory: its code is its USPS state code */
        if (!str_empty(city))
            g_string_append(line, city);
        if (!str_empty(city) && (!str_empty(region) || !str_empty(postal)))
            g_string_append_c(line, ',');
        const char *rest[2] = {region, postal};
        for (size_t i = 0; i < 2; i++)
            if (!str_empty(rest[i]))
                g_string_append_printf(line, "%s%s", line->len ? " " : "", rest[i]);
    } else {
        const char *parts[3] = {city, region, postal};
        if (code_in(in->country, code_first_countries, ARRAY_SIZE(code_first_countries))) {
            parts[0] = postal;
            parts[1] = city;
            parts[2] = region;
        }
        for (size_t i = 0; i < 3; i++)
            if (!str_empty(parts[i]))
                g_string_append_printf(line, "%s%s", line->len ? " " : "", parts[i]);
    }
    return g_string_free(line, FALSE);
}

/* ---------------------------------------------------------------------------------- */
/* Shared shaping (letter.h) */

#define CACHE_MAX 128 /* shaped blocks kept; a template has tens, a person a handful */

/* One shaped text, keyed by what it says and what it is. */
struct shaped {
    PangoLayout *layout;
    cairo_surface_t *form; /* drawn once for a PDF/VT-like reuse; NULL until a second use */
    double height;         /* an address block's height */
    unsigned hits;         /* uses after the first */
    unsigned form_id;      /* names the form in a run's key; 0 until it is made */
};

struct letter_cache {
    struct letter_layout l; /* its font_family is our copy */
    char *font_family;
    bool forms;
    PangoContext *context; /* made from the first cairo context drawn to */
    unsigned forms_made;   /* the last form_id given */
    GHashTable *shaped;    /* key (g_malloc'd) -> struct shaped */
};

static void shaped_free(void *p)
{
    struct shaped *sh = p;
    if (sh->layout != NULL)
        g_object_unref(sh->layout);
    if (sh->form != NULL)
        cairo_surface_destroy(sh->form);
    g_free(sh);
}

struct letter_cache *letter_cache_new(const struct letter_layout *layout, bool forms)
{
    struct letter_cache *c = xcalloc(1, sizeof(*c));
    c->l = *layout;
    c->font_family = xstrdup(layout->font_family != NULL ? layout->font_family : "");
    c->l.font_family = c->font_family;
    c->forms = forms;
    c->shaped = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, shaped_free);
    return c;
}

void letter_cache_free(struct letter_cache *c)
{
    if (c == NULL)
        return;
    g_hash_table_destroy(c->shaped);
    if (c->context != NULL)
        g_object_unref(c->context);
    free(c->font_family);
    free(c);
}

/* cache_get - the text shaped for key, counted as one more use; NULL when not cached. */
static struct shaped *cache_get(struct letter_cache *c, const char *key)
{
    struct shaped *sh = g_hash_table_lookup(c->shaped, key);
    if (sh != NULL)
        sh->hits++;
    return sh;
}

static gboolean shaped_unshared(void *key, void *value, void *data)
{
    (void)key;
    (void)data;
    return ((struct shaped *)value)->hits == 0;
}

/* cache_put - keep layout (taken over) under key. When full, what was used only once
 * goes (a person's own paragraphs), and if that is nothing, everything. */
static struct shaped *cache_put(struct letter_cache *c, const char *key, PangoLayout *layout)
{
    if (g_hash_table_size(c->shaped) >= CACHE_MAX &&
        g_hash_table_foreach_remove(c->shaped, shaped_unshared, NULL) == 0)
        g_hash_table_remove_all(c->shaped);
    struct shaped *sh = g_new0(struct shaped, 1);
    sh->layout = layout;
    g_hash_table_insert(c->shaped, g_strdup(key), sh);
    return sh;
}

/* cache_text - a one-line layout of text at size, shaped once per cache. */
static PangoLayout *cache_text(struct letter_cache *c, char kind, double size, const char *text)
{
    char *key = g_strdup_printf("%c%g\x1f%s", kind, size, text);
    struct shaped *sh = cache_get(c, key);
    if (sh == NULL) {
        PangoLayout *layout = layout_new(c->context, c->l.font_family, size, false);
        pango_layout_set_text(layout, text, -1);
        sh = cache_put(c, key, layout);
    }
    g_free(key);
    return g_object_ref(sh->layout);
}

/* ---------------------------------------------------------------------------------- */
/* Pages */

/* on_grid - v on the quarter-point grid when the layout asks for it (letter.h: grid). */
static double on_grid(const struct letter_layout *l, double v)
{
    return l->grid ? quarter_point(v) : v;
}

/* bullet_dx - where a list item's bullet is drawn, from the item's text. */
static double bullet_dx(const struct letter_layout *l)
{
    return on_grid(l, BULLET_AT * l->body_size - LIST_INDENT * l->body_size);
}

/* draw_layout_at - a layout with its top-left at x, y. On the grid it is drawn a line at a
 * time, as pango draws it, with each line's baseline origin on the grid. */
static void draw_layout_at(cairo_t *cr, const struct letter_layout *l, PangoLayout *layout,
                           double x, double y)
{
    if (!l->grid) {
        cairo_move_to(cr, x, y);
        pango_cairo_show_layout(cr, layout);
        return;
    }
    PangoLayoutIter *it = pango_layout_get_iter(layout);
    do {
        PangoRectangle logical;
        pango_layout_iter_get_line_extents(it, NULL, &logical);
        cairo_move_to(cr, on_grid(l, x + (double)logical.x / PANGO_SCALE),
                      on_grid(l, y + (double)pango_layout_iter_get_baseline(it) / PANGO_SCALE));
        pango_cairo_show_layout_line(cr, pango_layout_iter_get_line_readonly(it));
    } while (pango_layout_iter_next_line(it));
    pango_layout_iter_free(it);
}

/* One line of the body, or a whole block drawn as a form, placed on a page. */
struct placed_line {
    PangoLayoutLine *line; /* owned by its block's layout; NULL for a form */
    cairo_surface_t *form; /* the whole block, drawn once (owned by the job's forms) */
    unsigned form_id;      /* the form's id in the cache */
    int page;              /* 0-based */
    double x, baseline;    /* where it is drawn, in points; for a form, the block's top */
    bool bullet;           /* the first line of a list item: draw the bullet beside it */
};

/* Everything a letter needs, made before the first mark is drawn. */
struct letter_job {
    const struct letter_layout *l;
    struct letter_cache *cache;
    PangoContext *context;
    PangoLayout *return_layout;    /* NULL when there is no return address */
    PangoLayout *recipient_layout; /* name, street lines, city line, country */
    PangoLayout *date_layout;      /* NULL without a date */
    PangoLayout *bullet_layout;    /* "•" */
    struct zint_symbol *imb;       /* NULL without a barcode */
    double return_x, return_y;
    double recipient_x, recipient_y;
    double imb_x, imb_y;
    double date_x, date_y;
    double first_page_top;        /* where the body starts on page 1 */
    cairo_surface_t *return_form; /* the return address drawn once, or NULL */
    PangoLayout **blocks;         /* one per Markdown block */
    cairo_surface_t **forms;      /* per block: its form, or NULL to draw it line by line */
    unsigned *form_ids;           /* per block: its form's id */
    cairo_surface_t **runs;       /* forms of runs of blocks (runs_merge) */
    size_t run_count;
    size_t block_count;
    struct placed_line *lines;
    size_t line_count, line_capacity;
    int body_pages; /* pages with text; the duplex blank page is not counted */
};

static void job_clear(struct letter_job *job)
{
    if (job->return_layout != NULL)
        g_object_unref(job->return_layout);
    if (job->recipient_layout != NULL)
        g_object_unref(job->recipient_layout);
    if (job->date_layout != NULL)
        g_object_unref(job->date_layout);
    if (job->bullet_layout != NULL)
        g_object_unref(job->bullet_layout);
    for (size_t i = 0; i < job->block_count; i++) {
        g_object_unref(job->blocks[i]);
        if (job->forms[i] != NULL)
            cairo_surface_destroy(job->forms[i]);
    }
    FREE_MANY(job->blocks, job->forms, job->form_ids);
    for (size_t i = 0; i < job->run_count; i++)
        cairo_surface_destroy(job->runs[i]);
    free(job->runs);
    if (job->return_form != NULL)
        cairo_surface_destroy(job->return_form);
    free(job->lines);
    if (job->imb != NULL)
        ZBarcode_Delete(job->imb);
    if (job->context != NULL)
        g_object_unref(job->context);
}

static void place_line(struct letter_job *job, PangoLayoutLine *line, int page, double x,
                       double baseline, bool bullet)
{
    if (job->line_count == job->line_capacity) {
        job->line_capacity = job->line_capacity ? 2 * job->line_capacity : 128;
        job->lines = xreallocarray(job->lines, job->line_capacity, sizeof(job->lines[0]));
    }
    job->lines[job->line_count++] = (struct placed_line){line, NULL, 0, page, x, baseline, bullet};
}

/* place_form - a whole block on one page, its layout's top at y. */
static void place_form(struct letter_job *job, cairo_surface_t *form, int page, double x, double y)
{
    place_line(job, NULL, page, x, y, false);
    job->lines[job->line_count - 1].form = form;
}

/* Vertical metrics of one layout line, in points from the layout's top. */
struct line_metrics {
    PangoLayoutLine *line;
    double top, bottom, baseline;
};

static size_t layout_metrics(PangoLayout *layout, struct line_metrics **ret_metrics)
{
    size_t count = (size_t)pango_layout_get_line_count(layout);
    struct line_metrics *metrics = xcalloc(count ? count : 1, sizeof(metrics[0]));
    PangoLayoutIter *iter = pango_layout_get_iter(layout);
    size_t i = 0;
    do {
        PangoRectangle logical;
        pango_layout_iter_get_line_extents(iter, NULL, &logical);
        metrics[i].line = pango_layout_iter_get_line_readonly(iter);
        metrics[i].top = (double)logical.y / PANGO_SCALE;
        metrics[i].bottom = (double)(logical.y + logical.height) / PANGO_SCALE;
        metrics[i].baseline = (double)pango_layout_iter_get_baseline(iter) / PANGO_SCALE;
        i++;
    } while (i < count && pango_layout_iter_next_line(iter));
    pango_layout_iter_free(iter);
    *ret_metrics = metrics;
    return i;
}

/* form_new - an empty recording surface around layout (its ink and logical extents, pad
 * points more on every side and left more on the left), to draw it once into; black. */
static cairo_surface_t *form_new(PangoLayout *layout, double pad, double left, cairo_t **ret_cr)
{
    PangoRectangle ink, logical;
    pango_layout_get_extents(layout, &ink, &logical);
    double x0 = MIN(ink.x, logical.x) / (double)PANGO_SCALE - pad - left;
    double y0 = MIN(ink.y, logical.y) / (double)PANGO_SCALE - pad;
    double x1 = MAX(ink.x + ink.width, logical.x + logical.width) / (double)PANGO_SCALE + pad;
    double y1 = MAX(ink.y + ink.height, logical.y + logical.height) / (double)PANGO_SCALE + pad;
    cairo_rectangle_t extents = {x0, y0, x1 - x0, y1 - y0};
    cairo_surface_t *form = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents);
    cairo_t *cr = cairo_create(form);
    cairo_set_source_rgb(cr, 0, 0, 0);
    *ret_cr = cr;
    return form;
}

/* address_form - an address block drawn once, its top-left at the form's origin. */
static cairo_surface_t *address_form(const struct letter_layout *l, PangoLayout *layout)
{
    cairo_t *cr;
    cairo_surface_t *form = form_new(layout, l->body_size, 0, &cr);
    draw_layout_at(cr, l, layout, 0, 0);
    cairo_destroy(cr);
    return form;
}

/* block_form - a body block drawn once, line by line as body_flow would place it on one
 * page (and the bullet of a list item), its layout's top-left at the form's origin. */
static cairo_surface_t *block_form(const struct letter_job *job, PangoLayout *layout, bool bullet)
{
    const struct letter_layout *l = job->l;
    double indent = LIST_INDENT * l->body_size;
    cairo_t *cr;
    cairo_surface_t *form = form_new(layout, 2 * l->body_size, bullet ? indent : 0, &cr);
    struct line_metrics *m;
    size_t n = layout_metrics(layout, &m);
    if (bullet && n > 0) {
        cairo_move_to(cr, bullet_dx(l), on_grid(l, m[0].baseline));
        pango_cairo_show_layout_line(cr, pango_layout_get_line_readonly(job->bullet_layout, 0));
    }
    for (size_t k = 0; k < n; k++) {
        cairo_move_to(cr, 0, on_grid(l, m[k].baseline));
        pango_cairo_show_layout_line(cr, m[k].line);
    }
    free(m);
    cairo_destroy(cr);
    return form;
}

/* block_space - the gap above a block, from its kind and the one before it. */
static double block_space(const struct letter_layout *l, const struct block *block,
                          const struct block *previous)
{
    double em = l->body_size;
    if (previous == NULL)
        return 0;
    switch (block->kind) {
    case BLOCK_TITLE:
        return 1.2 * em;
    case BLOCK_HEADING:
        return 1.1 * em;
    case BLOCK_BULLET:
        if (previous->kind == BLOCK_BULLET)
            return 0.3 * em;
        break;
    case BLOCK_PARAGRAPH:
        break;
    }
    if (previous->kind == BLOCK_TITLE || previous->kind == BLOCK_HEADING)
        return 0.4 * em;
    return 0.7 * em;
}

/* block_markup - a block's text and attributes, from its escaped Pango markup. */
static int block_markup(const struct block *block, size_t i, PangoAttrList **ret_attributes,
                        char **ret_text, char *err, size_t err_size)
{
    char *markup = inline_markup(block->text->str);
    GError *error = NULL;
    gboolean parsed = pango_parse_markup(markup, -1, 0, ret_attributes, ret_text, NULL, &error);
    g_free(markup);
    if (!parsed) {
        int r = error_set(err, err_size, -EINVAL, "body block %zu: %s", i + 1,
                          error != NULL ? error->message : "markup error");
        g_clear_error(&error);
        return r;
    }
    return 0;
}

int letter_markup_parse(const char *body, size_t *ret_blocks, size_t *ret_text_bytes, char *err,
                        size_t err_size)
{
    if (body != NULL && !utf8_valid(body, strlen(body)))
        return error_set(err, err_size, -EINVAL, "body: invalid UTF-8");
    struct block_list blocks = {0};
    markdown_parse(body, &blocks);
    size_t text_bytes = 0;
    int r = 0;
    for (size_t i = 0; i < blocks.count && r == 0; i++) {
        PangoAttrList *attributes = NULL;
        char *text = NULL;
        r = block_markup(&blocks.items[i], i, &attributes, &text, err, err_size);
        if (r == 0) {
            text_bytes += strlen(text);
            pango_attr_list_unref(attributes);
            g_free(text);
        }
    }
    if (r == 0) {
        *ret_blocks = blocks.count;
        *ret_text_bytes = text_bytes;
    }
    block_list_clear(&blocks);
    return r;
}

/* block_shape - a block's pango layout, at the width it will be set in. */
static int block_shape(const struct letter_job *job, const struct block *block, size_t i,
                       double width, double indent, PangoLayout **ret_layout, char *err,
                       size_t err_size)
{
    const struct letter_layout *l = job->l;
    double size = block->kind == BLOCK_TITLE     ? l->title_size
                  : block->kind == BLOCK_HEADING ? l->heading_size
                                                 : l->body_size;
    bool bold = block->kind == BLOCK_TITLE || block->kind == BLOCK_HEADING;
    PangoAttrList *attributes = NULL;
    char *text = NULL;
    int r = block_markup(block, i, &attributes, &text, err, err_size);
    if (r < 0)
        return r;
    PangoLayout *layout = layout_new(job->context, l->font_family, size, bold);
    double set_width = block->kind == BLOCK_BULLET ? width - indent : width;
    pango_layout_set_width(layout, (int)(set_width * PANGO_SCALE));
    pango_layout_set_wrap(layout, PANGO_WRAP_WORD_CHAR);
    pango_layout_set_spacing(layout, (int)(0.12 * size * PANGO_SCALE));
    pango_layout_set_text(layout, text, -1);
    pango_layout_set_attributes(layout, attributes);
    pango_attr_list_unref(attributes);
    g_free(text);
    *ret_layout = layout;
    return 0;
}

/* body_layout - one pango layout per block, shaped once per cache, and its form when the
 * block was seen in an earlier letter. */
static int body_layout(struct letter_job *job, const struct block_list *blocks, char *err,
                       size_t err_size)
{
    const struct letter_layout *l = job->l;
    double width = l->page_width - l->margin_left - l->margin_right;
    double indent = LIST_INDENT * l->body_size;
    size_t slots = blocks->count ? blocks->count : 1;
    job->blocks = xcalloc(slots, sizeof(job->blocks[0]));
    job->forms = xcalloc(slots, sizeof(job->forms[0]));
    job->form_ids = xcalloc(slots, sizeof(job->form_ids[0]));
    for (size_t i = 0; i < blocks->count; i++) {
        const struct block *block = &blocks->items[i];
        /* the same text of the same kind is shaped the same in every letter */
        char *key = g_strdup_printf("%d\x1f%s", (int)block->kind, block->text->str);
        struct shaped *sh = cache_get(job->cache, key);
        if (sh == NULL) {
            PangoLayout *layout = NULL;
            int r = block_shape(job, block, i, width, indent, &layout, err, err_size);
            if (r < 0) {
                g_free(key);
                return r;
            }
            sh = cache_put(job->cache, key, layout);
        }
        g_free(key);
        job->blocks[job->block_count] = g_object_ref(sh->layout);
        if (job->cache->forms && sh->hits > 0) {
            if (sh->form == NULL) {
                sh->form = block_form(job, sh->layout, block->kind == BLOCK_BULLET);
                sh->form_id = ++job->cache->forms_made;
            }
            job->forms[job->block_count] = cairo_surface_reference(sh->form);
            job->form_ids[job->block_count] = sh->form_id;
        }
        job->block_count++;
    }
    return 0;
}

/* keep_height - how much of a block must stay together at the foot of a page: two lines
 * (no orphans), or a heading with the first lines of what follows it. */
static double keep_height(const struct line_metrics *m, size_t n)
{
    size_t keep = n < 2 ? n : 2;
    return keep == 0 ? 0 : m[keep - 1].bottom - m[0].top;
}

/*
 * body_flow - put every line of the body on a page. Lines never cross the bottom
 * margin; a paragraph leaves no single line at the foot of a page nor alone at the top of
 * the next when it can help it, and a heading stays with the start of its section.
 */
static void body_flow(struct letter_job *job, const struct block_list *blocks)
{
    const struct letter_layout *l = job->l;
    double limit = l->page_height - l->margin_bottom;
    double indent = LIST_INDENT * l->body_size;
    int page = 0;
    double page_top = job->first_page_top;
    double y = page_top;

    for (size_t b = 0; b < blocks->count; b++) {
        const struct block *block = &blocks->items[b];
        struct line_metrics *m;
        size_t n = layout_metrics(job->blocks[b], &m);
        double x = on_grid(l, l->margin_left + (block->kind == BLOCK_BULLET ? indent : 0));
        double space = y > page_top ? block_space(l, block, b ? &blocks->items[b - 1] : NULL) : 0;

        double need = keep_height(m, n);
        bool heading = block->kind == BLOCK_TITLE || block->kind == BLOCK_HEADING;
        if (heading && b + 1 < blocks->count) {
            struct line_metrics *next;
            size_t next_n = layout_metrics(job->blocks[b + 1], &next);
            need = m[n - 1].bottom - m[0].top + block_space(l, &blocks->items[b + 1], block) +
                   keep_height(next, next_n);
            free(next);
        }
        if (y > page_top && y + space + need > limit) {
            page++;
            page_top = l->margin_top;
            y = page_top;
            space = 0;
        }

        /* page y of the layout's top. The pages break by the exact sums, as without the
         * grid; only where a block is drawn is rounded (letter.h: grid). */
        double origin = y + space - m[0].top;
        if (job->forms[b] != NULL && origin + m[n - 1].bottom <= limit) {
            /* all of it on this page: the lines below would land exactly so */
            place_form(job, job->forms[b], page, x, on_grid(l, origin));
            job->lines[job->line_count - 1].form_id = job->form_ids[b];
            y = origin + m[n - 1].bottom;
            free(m);
            continue;
        }
        size_t i = 0;
        while (i < n) {
            size_t fit = 0;
            while (i + fit < n && origin + m[i + fit].bottom <= limit)
                fit++;
            if (fit < n - i) {
                if (n - i - fit == 1 && fit >= (i == 0 ? 3 : 2))
                    fit--; /* carry a line over so the last one is not alone */
                if (fit == 0 && origin + m[i].top <= page_top + 0.001)
                    fit = 1; /* a line taller than the page: print it anyway */
            }
            for (size_t k = i; k < i + fit; k++)
                place_line(job, m[k].line, page, x, on_grid(l, origin) + on_grid(l, m[k].baseline),
                           block->kind == BLOCK_BULLET && k == 0);
            i += fit;
            if (i < n) {
                page++;
                page_top = l->margin_top;
                origin = page_top - m[i].top;
            }
        }
        y = origin + m[n - 1].bottom;
        free(m);
    }
    job->body_pages = page + 1;
}

/* return_fit - the return address fitted to its box, once per cache and box; its form
 * too when it was used before. */
static int return_fit(struct letter_job *job, const char *const *lines, double max_width,
                      double max_height, double *ret_height)
{
    GString *key = g_string_new(NULL);
    g_string_printf(key, "R%g\x1f%g", max_width, max_height);
    for (size_t i = 0; lines[i] != NULL; i++) {
        g_string_append_c(key, '\x1f');
        g_string_append(key, lines[i]);
    }
    struct shaped *sh = cache_get(job->cache, key->str);
    int r = 0;
    if (sh == NULL) {
        PangoLayout *layout = NULL;
        double height = 0;
        r = address_fit(job->context, job->l, lines, max_width, max_height, &layout, &height);
        if (r == 0) {
            sh = cache_put(job->cache, key->str, layout);
            sh->height = height;
        }
    }
    g_string_free(key, TRUE);
    if (r < 0)
        return r;
    job->return_layout = g_object_ref(sh->layout);
    *ret_height = sh->height;
    if (job->cache->forms && sh->hits > 0) {
        if (sh->form == NULL)
            sh->form = address_form(job->l, sh->layout);
        job->return_form = cairo_surface_reference(sh->form);
    }
    return 0;
}

/* run_form - blocks lines[0..count) painted, as placed, into one form whose origin is the
 * first one's place: the page's fixed text once, however many blocks it has. */
static cairo_surface_t *run_form(const struct letter_layout *l, const struct placed_line *lines,
                                 size_t count)
{
    double x0 = lines[0].x, y0 = lines[0].baseline;
    cairo_rectangle_t extents = {-x0, -y0, l->page_width, l->page_height};
    cairo_surface_t *form = cairo_recording_surface_create(CAIRO_CONTENT_COLOR_ALPHA, &extents);
    cairo_t *cr = cairo_create(form);
    for (size_t k = 0; k < count; k++) {
        cairo_set_source_surface(cr, lines[k].form, lines[k].x - x0, lines[k].baseline - y0);
        cairo_paint(cr);
    }
    cairo_destroy(cr);
    return form;
}

/* run_key - what makes a run the same: its forms and where each is from the first, to a
 * ten-thousandth of a point (the same offset reached by other sums of the same heights),
 * each line's three numbers written in hex: formatting doubles with "%.4f" was a
 * fortieth of a batch letter's instructions. */
static char *run_key(const struct placed_line *lines, size_t count)
{
    GString *key = g_string_sized_new(1 + count * 2 * sizeof(int64_t[3]));
    g_string_append_c(key, 'U');
    for (size_t k = 0; k < count; k++) {
        const int64_t line[3] = {lines[k].form_id, llround((lines[k].x - lines[0].x) * 1e4),
                                 llround((lines[k].baseline - lines[0].baseline) * 1e4)};
        char hex[2 * sizeof(line) + 1];
        hex_write(hex, line, sizeof(line));
        g_string_append(key, hex);
    }
    return g_string_free(key, FALSE);
}

/*
 * runs_merge - consecutive blocks drawn as forms on one page become one form, once the
 * same run was seen in an earlier letter: most pages of a campaign's letters then cost a
 * form reference or two, and their resources name two forms rather than twenty.
 */
static void runs_merge(struct letter_job *job)
{
    size_t out = 0;
    for (size_t i = 0; i < job->line_count;) {
        size_t n = 0;
        while (i + n < job->line_count && job->lines[i + n].form != NULL &&
               job->lines[i + n].page == job->lines[i].page)
            n++;
        if (n < 2) {
            job->lines[out++] = job->lines[i++];
            continue;
        }
        char *key = run_key(&job->lines[i], n);
        struct shaped *sh = cache_get(job->cache, key);
        if (sh == NULL)
            sh = cache_put(job->cache, key, NULL);
        g_free(key);
        if (sh->hits == 0) {
            memmove(&job->lines[out], &job->lines[i], n * sizeof(job->lines[0]));
            out += n;
            i += n;
            continue;
        }
        if (sh->form == NULL)
            sh->form = run_form(job->l, &job->lines[i], n);
        job->runs = xreallocarray(job->runs, job->run_count + 1, sizeof(job->runs[0]));
        job->runs[job->run_count++] = cairo_surface_reference(sh->form);
        job->lines[out] = job->lines[i];
        job->lines[out].form = sh->form;
        out++;
        i += n;
    }
    job->line_count = out;
}

/* recipient_lines - the recipient's address block: name, street lines, city line, and
 * the country abroad (city and country are allocated: g_free them). Returns the count. */
static size_t recipient_lines(const struct letter_input *in, const char *lines[], char **city,
                              char **country)
{
    bool domestic = country_domestic(in->country);
    size_t n = 0;
    *city = city_line(in, domestic);
    *country = domestic ? NULL : country_line(in->country);
    if (!str_empty(in->name))
        lines[n++] = in->name;
    for (size_t i = 0; i < 2; i++)
        if (!str_empty(in->address[i]))
            lines[n++] = in->address[i];
    if ((*city)[0] != '\0')
        lines[n++] = *city;
    if (*country != NULL)
        lines[n++] = *country;
    lines[n] = NULL;
    return n;
}

/* return_lines_of - the return address, NULL-terminated in lines; its line count, or
 * -EINVAL when it has more lines than the layout holds. */
static int return_lines_of(const struct letter_input *in, const char *lines[], char *err,
                           size_t err_size)
{
    int n = 0;
    for (; in->return_address != NULL && in->return_address[n] != NULL; n++) {
        if (n == RETURN_LINES_MAX)
            return error_set(err, err_size, -EINVAL, "the return address has more than %d lines",
                             RETURN_LINES_MAX);
        lines[n] = in->return_address[n];
    }
    lines[n] = NULL;
    return n;
}

/* header_window - a window envelope: the return address and the recipient (with its IMb)
 * each fitted to its window, the date level with the recipient, out of the window. */
static int header_window(struct letter_job *job, const struct letter_input *in, const char *lines[],
                         size_t n, const char *return_lines[], double date_width, char *err,
                         size_t err_size)
{
    const struct letter_layout *l = job->l;
    double imb_block = 0, return_height = 0, recipient_height;
    int r;
    if (in->imb != NULL) {
        r = imb_encode(in->imb, &job->imb, err, err_size);
        if (r < 0)
            return r;
        if (imb_width(job->imb) > l->recipient_box.width)
            return error_set(err, err_size, -ENOSPC,
                             "the IMb (%.1f pt wide) does not fit the recipient box",
                             imb_width(job->imb));
        imb_block = IMB_GAP + l->imb_height + IMB_GAP; /* its clear zone on both sides */
    }
    if (return_lines[0] != NULL) {
        r = return_fit(job, return_lines, l->return_box.width, l->return_box.height,
                       &return_height);
        if (r < 0)
            return error_set(err, err_size, r, "the return address does not fit its box");
    }
    r = address_fit(job->context, l, lines, l->recipient_box.width,
                    l->recipient_box.height - imb_block, &job->recipient_layout, &recipient_height);
    if (r < 0)
        return error_set(err, err_size, r,
                         "the recipient's address (%zu lines%s) does not fit the window at %g pt",
                         n, job->imb != NULL ? " and the IMb" : "", l->address_min_size);
    job->return_x = l->return_box.x;
    job->return_y = l->return_box.y;
    job->imb_x = l->recipient_box.x;
    job->recipient_x = l->recipient_box.x;
    if (l->imb_below) {
        /* the bottom of the window is the part that stays in view when the sheet
         * slides up in the envelope */
        job->recipient_y = l->recipient_box.y;
        job->imb_y = l->recipient_box.y + recipient_height + IMB_GAP;
    } else {
        job->imb_y = l->recipient_box.y + IMB_GAP;
        job->recipient_y = l->recipient_box.y + imb_block;
    }
    /* the date: right-aligned, level with the recipient's address, out of the window */
    job->date_x = l->page_width - l->margin_right - date_width;
    job->date_y = l->recipient_box.y;
    job->first_page_top = l->body_top;
    return 0;
}

/* header_plain - no envelope (fax): return address and date on the first line, then the
 * recipient, then the body. */
static int header_plain(struct letter_job *job, const char *lines[], const char *return_lines[],
                        double date_width, double date_height, char *err, size_t err_size)
{
    const struct letter_layout *l = job->l;
    double content_width = l->page_width - l->margin_left - l->margin_right;
    double return_width = content_width - (date_width > 0 ? date_width + l->body_size : 0);
    double return_height = 0, recipient_height;
    int r;
    if (return_lines[0] != NULL) {
        r = return_fit(job, return_lines, return_width, l->page_height / 4, &return_height);
        if (r < 0)
            return error_set(err, err_size, r, "the return address is too wide for the page");
    }
    r = address_fit(job->context, l, lines, content_width, l->page_height / 4,
                    &job->recipient_layout, &recipient_height);
    if (r < 0)
        return error_set(err, err_size, r, "the recipient's address is too wide for the page");
    job->return_x = l->margin_left;
    job->return_y = l->margin_top;
    job->date_x = l->page_width - l->margin_right - date_width;
    job->date_y = l->margin_top;
    double top = l->margin_top + (return_height > date_height ? return_height : date_height);
    job->recipient_x = l->margin_left;
    job->recipient_y = top + (return_height > 0 || date_height > 0 ? 1.5 * l->body_size : 0);
    job->first_page_top = job->recipient_y + recipient_height + 2 * l->body_size;
    return 0;
}

/* header_prepare - the address blocks, barcode and date of page 1, and where the body starts. */
static int header_prepare(struct letter_job *job, const struct letter_input *in, char *err,
                          size_t err_size)
{
    const struct letter_layout *l = job->l;
    if (!str_empty(in->date))
        job->date_layout = cache_text(job->cache, 'D', l->body_size, in->date);
    double date_width = 0, date_height = 0;
    if (job->date_layout != NULL)
        layout_size(job->date_layout, &date_width, &date_height);

    const char *lines[RECIPIENT_LINES_MAX];
    char *city = NULL, *country = NULL;
    size_t n = recipient_lines(in, lines, &city, &country);
    const char *return_lines[RETURN_LINES_MAX + 1];
    int r = 0;
    if (n == 0)
        r = error_set(err, err_size, -EINVAL, "no recipient: no name and no address");
    if (r == 0)
        r = return_lines_of(in, return_lines, err, err_size);
    if (r >= 0)
        r = l->windows
                ? header_window(job, in, lines, n, return_lines, date_width, err, err_size)
                : header_plain(job, lines, return_lines, date_width, date_height, err, err_size);
    g_free(city);
    g_free(country);
    return r < 0 ? r : 0;
}

static void draw_header(cairo_t *cr, const struct letter_job *job)
{
    const struct letter_layout *l = job->l;
    /* on the grid, so that its form and its lines drawn one by one land alike */
    double return_x = on_grid(l, job->return_x), return_y = on_grid(l, job->return_y);
    if (job->return_form != NULL) {
        cairo_set_source_surface(cr, job->return_form, return_x, return_y);
        cairo_paint(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
    } else if (job->return_layout != NULL) {
        draw_layout_at(cr, l, job->return_layout, return_x, return_y);
    }
    if (job->imb != NULL)
        imb_draw(cr, job->imb, job->imb_x, job->imb_y, l->imb_height);
    draw_layout_at(cr, l, job->recipient_layout, job->recipient_x, job->recipient_y);
    if (job->date_layout != NULL)
        draw_layout_at(cr, l, job->date_layout, job->date_x, job->date_y);

    if (l->windows && l->fold_marks) {
        cairo_save(cr);
        cairo_set_line_width(cr, 0.5);
        for (int i = 1; i <= 2; i++) {
            double y = l->page_height * i / 3;
            cairo_move_to(cr, FOLD_MARK_FROM_EDGE, y);
            cairo_line_to(cr, FOLD_MARK_FROM_EDGE + FOLD_MARK_LENGTH, y);
        }
        cairo_stroke(cr);
        cairo_restore(cr);
    }
    if (l->windows && l->show_boxes) {
        const struct letter_box *boxes[2] = {&l->return_box, &l->recipient_box};
        static const double dash[] = {2.0, 2.0};
        cairo_save(cr);
        cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
        cairo_set_line_width(cr, 0.4);
        cairo_set_dash(cr, dash, 2, 0);
        for (size_t i = 0; i < 2; i++)
            cairo_rectangle(cr, boxes[i]->x, boxes[i]->y, boxes[i]->width, boxes[i]->height);
        cairo_stroke(cr);
        cairo_restore(cr);
    }
}

static void draw_footer(cairo_t *cr, const struct letter_job *job, int page)
{
    const struct letter_layout *l = job->l;
    char text[64];
    snprintf(text, sizeof(text), "Page %d of %d", page + 1, job->body_pages);
    PangoLayout *layout = cache_text(job->cache, 'F', l->footer_size, text);
    double width, height;
    layout_size(layout, &width, &height);
    double y = l->page_height - l->margin_bottom + (l->margin_bottom - height) / 2;
    draw_layout_at(cr, l, layout, (l->page_width - width) / 2, y);
    g_object_unref(layout);
}

static void page_begin(cairo_t *cr, const struct letter_layout *l)
{
    cairo_surface_t *target = cairo_get_target(cr);
    if (cairo_surface_get_type(target) == CAIRO_SURFACE_TYPE_PDF)
        cairo_pdf_surface_set_size(target, l->page_width, l->page_height);
}

/* ---------------------------------------------------------------------------------- */
/* Fonts */

#ifndef CRIER_FONTS_DIR
#define CRIER_FONTS_DIR "/usr/local/share/crier/fonts"
#endif
#ifndef CRIER_BUILD_FONTS_DIR
#define CRIER_BUILD_FONTS_DIR CRIER_FONTS_DIR
#endif

const char *const letter_font_families[] = {
    /* crier's own: DejaVu Sans without its hinting (channels/sans_font.py), the same
     * outlines and metrics in under half the bytes; DejaVu Sans where they are missing */
    "Crier Sans,DejaVu Sans",
    /* crier before Crier Sans: the system's DejaVu Sans, hinting and all */
    "DejaVu Sans",
    NULL,
};

static const char *const sans_files[] = {"CrierSans.ttf", "CrierSans-Bold.ttf"};
static pthread_once_t sans_once = PTHREAD_ONCE_INIT;
static char sans_dir[4096]; /* where they were found; "" when they were not */

/* sans_found - dir holds every one of crier's font files */
static bool sans_found(const char *dir)
{
    for (size_t i = 0; i < ARRAY_SIZE(sans_files); i++) {
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", dir, sans_files[i]) >= (int)sizeof(path) ||
            access(path, R_OK) != 0)
            return false;
    }
    return true;
}

/*
 * sans_register - crier's fonts made known to fontconfig, as the process's application
 * fonts, before the first pango context: from $CRIER_FONTS_DIR when it is set (and then
 * only from there), else where they are installed, else an uninstalled build's directory.
 * Without them "Crier Sans" matches nothing and pango draws in DejaVu Sans.
 */
static void sans_register(void)
{
    FcConfig *config = FcConfigGetCurrent();
    if (config == NULL)
        return;
    /* fontconfig rebuilds its configuration when a font directory changes (every 30 s,
     * by default), and the rebuilt one would not have them: lanes started later would
     * draw in DejaVu Sans */
    FcConfigSetRescanInterval(config, 0);
    const char *env = getenv("CRIER_FONTS_DIR");
    const char *dirs[] = {CRIER_FONTS_DIR, CRIER_BUILD_FONTS_DIR};
    const char *dir = NULL;
    if (env != NULL)
        dir = sans_found(env) ? env : NULL;
    for (size_t i = 0; env == NULL && dir == NULL && i < ARRAY_SIZE(dirs); i++)
        if (sans_found(dirs[i]))
            dir = dirs[i];
    if (dir == NULL)
        return;
    bool added = true;
    for (size_t i = 0; i < ARRAY_SIZE(sans_files); i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, sans_files[i]);
        added = FcConfigAppFontAddFile(config, (const FcChar8 *)path) && added;
    }
    if (added)
        snprintf(sans_dir, sizeof(sans_dir), "%s", dir);
}

const char *letter_fonts_dir(void)
{
    pthread_once(&sans_once, sans_register);
    return sans_dir[0] ? sans_dir : NULL;
}

/* context_new - a pango context for cr with unhinted metrics, so line breaks depend on
 * nothing but the text and the fonts. */
static PangoContext *context_new(cairo_t *cr)
{
    pthread_once(&sans_once, sans_register);
    PangoContext *context = pango_cairo_create_context(cr);
    cairo_font_options_t *options = cairo_font_options_create();
    cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
    cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
    pango_cairo_context_set_font_options(context, options);
    cairo_font_options_destroy(options);
    pango_cairo_context_set_resolution(context, 72);
    pango_context_set_round_glyph_positions(context, FALSE);
    return context;
}

/* draw_page - one page of a laid-out letter; returns the next line not yet drawn. */
static size_t draw_page(cairo_t *cr, const struct letter_job *job, int page, size_t next_line)
{
    const struct letter_layout *l = job->l;
    page_begin(cr, l);
    cairo_save(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    if (page == 0)
        draw_header(cr, job);
    for (; next_line < job->line_count && job->lines[next_line].page == page; next_line++) {
        const struct placed_line *placed = &job->lines[next_line];
        /* body_flow placed it on the grid already (when the layout has one) */
        if (placed->form != NULL) {
            cairo_set_source_surface(cr, placed->form, placed->x, placed->baseline);
            cairo_paint(cr);
            cairo_set_source_rgb(cr, 0, 0, 0);
            continue;
        }
        if (placed->bullet) {
            PangoLayoutLine *bullet = pango_layout_get_line_readonly(job->bullet_layout, 0);
            /* on the grid, where block_form puts it: from the item's x */
            cairo_move_to(
                cr, l->grid ? placed->x + bullet_dx(l) : l->margin_left + BULLET_AT * l->body_size,
                placed->baseline);
            pango_cairo_show_layout_line(cr, bullet);
        }
        cairo_move_to(cr, placed->x, placed->baseline);
        pango_cairo_show_layout_line(cr, placed->line);
    }
    draw_footer(cr, job, page);
    cairo_restore(cr);
    cairo_show_page(cr);
    return next_line;
}

int letter_render_cached(cairo_t *cr, struct letter_cache *cache, const struct letter_input *in,
                         int *ret_pages, char *err, size_t err_size)
{
    const struct letter_layout *layout = &cache->l;
    int r = letter_layout_check(layout, err, err_size);
    if (r < 0)
        return r;
    r = input_check(in, err, err_size);
    if (r < 0)
        return r;
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS)
        return error_set(err, err_size, -EIO, "cairo: %s",
                         cairo_status_to_string(cairo_status(cr)));

    if (cache->context == NULL)
        cache->context = context_new(cr);
    struct letter_job job = {.l = layout, .cache = cache};
    struct block_list blocks = {0};
    job.context = g_object_ref(cache->context);
    markdown_parse(in->body, &blocks);
    r = header_prepare(&job, in, err, err_size);
    if (r < 0)
        goto out;
    job.bullet_layout = cache_text(cache, 'B', layout->body_size, "\u2022");
    r = body_layout(&job, &blocks, err, err_size);
    if (r < 0)
        goto out;
    body_flow(&job, &blocks);
    if (cache->forms)
        runs_merge(&job);

    size_t next_line = 0;
    for (int page = 0; page < job.body_pages; page++)
        next_line = draw_page(cr, &job, page, next_line);
    int pages = job.body_pages;
    if (layout->duplex && pages % 2 == 1) {
        page_begin(cr, layout);
        cairo_show_page(cr); /* the back of the last sheet stays blank */
        pages++;
    }
    if (cairo_status(cr) != CAIRO_STATUS_SUCCESS) {
        r = error_set(err, err_size, -EIO, "cairo: %s", cairo_status_to_string(cairo_status(cr)));
        goto out;
    }
    *ret_pages = pages;
    r = 0;
out:
    block_list_clear(&blocks);
    job_clear(&job);
    return r;
}

int letter_render(cairo_t *cr, const struct letter_layout *layout, const struct letter_input *in,
                  int *ret_pages, char *err, size_t err_size)
{
    struct letter_cache *cache = letter_cache_new(layout, false);
    int r = letter_render_cached(cr, cache, in, ret_pages, err, err_size);
    letter_cache_free(cache);
    return r;
}

/* ---------------------------------------------------------------------------------- */
/* PDF */

int letter_pdf_metadata(cairo_surface_t *surface, const char *date)
{
    if (!date_valid(date))
        return -EINVAL;
    char stamp[32];
    snprintf(stamp, sizeof(stamp), "%sT00:00:00Z", date);
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATE_DATE, stamp);
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "crier " CRIER_VERSION);
    return 0;
}

struct pdf_buffer {
    unsigned char *data;
    size_t len, capacity;
};

static cairo_status_t pdf_buffer_write(void *closure, const unsigned char *data,
                                       unsigned int length)
{
    struct pdf_buffer *buffer = closure;
    if (buffer->len + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 64 * 1024;
        while (capacity < buffer->len + length)
            capacity *= 2;
        buffer->data = xrealloc(buffer->data, capacity);
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->len, data, length);
    buffer->len += length;
    return CAIRO_STATUS_SUCCESS;
}

int letter_render_pdf_cached(struct letter_cache *cache, const struct letter_input *in,
                             unsigned char **ret_pdf, size_t *ret_len, int *ret_pages, char *err,
                             size_t err_size)
{
    const struct letter_layout *layout = &cache->l;
    if (!date_valid(in->date))
        return error_set(err, err_size, -EINVAL, "date must be YYYY-MM-DD");
    struct pdf_buffer buffer = {0};
    cairo_surface_t *surface = cairo_pdf_surface_create_for_stream(
        pdf_buffer_write, &buffer, layout->page_width, layout->page_height);
    letter_pdf_metadata(surface, in->date);
    cairo_t *cr = cairo_create(surface);
    int pages = 0;
    int r = letter_render_cached(cr, cache, in, &pages, err, err_size);
    cairo_destroy(cr);
    cairo_surface_finish(surface);
    if (r == 0 && cairo_surface_status(surface) != CAIRO_STATUS_SUCCESS)
        r = error_set(err, err_size, -EIO, "cairo: %s",
                      cairo_status_to_string(cairo_surface_status(surface)));
    cairo_surface_destroy(surface);
    if (r < 0) {
        free(buffer.data);
        return r;
    }
    *ret_pdf = buffer.data;
    *ret_len = buffer.len;
    *ret_pages = pages;
    return 0;
}

int letter_render_pdf(const struct letter_layout *layout, const struct letter_input *in,
                      unsigned char **ret_pdf, size_t *ret_len, int *ret_pages, char *err,
                      size_t err_size)
{
    struct letter_cache *cache = letter_cache_new(layout, false);
    int r = letter_render_pdf_cached(cache, in, ret_pdf, ret_len, ret_pages, err, err_size);
    letter_cache_free(cache);
    return r;
}
