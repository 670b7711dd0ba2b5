/*
 * letter.h - one notice laid out as a US Letter page set (cairo + pango), shared by the
 * print channel (many letters in one batch PDF) and the fax channel (one PDF per notice).
 *
 * The first page is laid out for a #10 double-window envelope: the return address and
 * the recipient's address (with an optional Intelligent Mail barcode above or below it)
 * sit where the two windows are once the sheet is tri-folded; the Markdown body (crier's
 * subset: "# ", "## ", paragraphs, **bold**, "- " lists, and backslash escapes of
 * \ * # -) flows below and onto further
 * pages, each with a "Page N of M" footer. Rendering is deterministic: the same layout and input
 * always produce the same drawing operations, and letter_render_pdf() the same bytes.
 *
 * This module knows nothing of SQL, templates or notices: the caller renders letter.md and
 * hands over plain strings. It never logs.
 *
 * SECURITY: every string in struct letter_input is untrusted (it comes from the
 * affected-individual list). Address lines are drawn as plain text, never as markup; the
 * body's text is escaped before the few Markdown constructs are turned into Pango markup,
 * so a name such as "<b>Mallory & Co</b>" prints exactly as written. Invalid UTF-8 and
 * control characters in an address line are refused.
 */
#ifndef CRIER_LETTER_H
#define CRIER_LETTER_H

#include <cairo.h>
#include <stdbool.h>
#include <stddef.h>

#define LETTER_POINTS_PER_INCH 72.0
#define LETTER_IMB_INPUT_MAX   33 /* "20 digits-11 digits" and the NUL */

/* A rectangle on the page, in points from the page's top-left corner. */
struct letter_box {
    double x, y;
    double width, height;
};

/*
 * Where things go. letter_layout_default() fills the values documented in docs/letters.md
 * (US Letter, 612 x 792 pt, windows of a #10 double-window envelope); a config may then
 * override any of them. All lengths are in points (1/72 inch).
 */
struct letter_layout {
    double page_width, page_height;                              /* 612 x 792: US Letter */
    double margin_top, margin_bottom, margin_left, margin_right; /* body text area */
    bool windows;                    /* false (fax): addresses at the top, no windows, no IMb */
    struct letter_box return_box;    /* the return address stays inside this box */
    struct letter_box recipient_box; /* the IMb and the recipient's address stay inside */
    double body_top;                 /* page 1: where the body starts (windows only) */
    const char *font_family;         /* pango families: letter_font_families[0] */
    double body_size;                /* body text; at least 10 (Cal. Civ. Code 1798.82(d)) */
    double title_size;               /* "# " lines */
    double heading_size;             /* "## " lines */
    double address_size;             /* address blocks, shrunk to fit their box ... */
    double address_min_size;         /* ... but never below this: then -ENOSPC */
    double footer_size;              /* "Page N of M" */
    double imb_height;               /* full bar height of the Intelligent Mail barcode */
    bool imb_below;                  /* the IMb under the address instead of above the name */
    bool fold_marks;                 /* short tri-fold marks at the left edge of page 1 */
    bool duplex;                     /* add a blank page when the letter's count is odd */
    bool show_boxes;                 /* proofs only: outline the two address boxes */
    bool grid; /* text and forms placed on whole quarter points: shorter numbers, fewer
                * bytes. A fax keeps false: its digest is of its bytes, so a fax sent
                * before the grid must render again exactly as it was sent. */
};

/* letter_layout_default - the documented defaults (see docs/letters.md for the source). */
void letter_layout_default(struct letter_layout *layout);

/* letter_layout_check - are the sizes positive and the boxes on the page? -EINVAL, why in
 * err, when not. letter_render() checks too; a config loader calls this to fail early. */
int letter_layout_check(const struct letter_layout *layout, char *err, size_t err_size);

/*
 * The fields of a USPS Intelligent Mail barcode, as decimal digit strings (leading zeros
 * matter). The tracking code is barcode_id + service_type + mailer_id + serial: 20 digits.
 */
struct letter_imb {
    const char *barcode_id;   /* 2 digits, the second 0-4 (USPS-B-3200) */
    const char *service_type; /* 3 digits (STID) */
    const char *mailer_id;    /* 6 or 9 digits */
    const char *serial;       /* 9 digits with a 6-digit mailer id, 6 with a 9-digit one */
    const char *routing_zip;  /* "", 5, 9 or 11 digits ("12345-6789" is accepted) */
};

/*
 * letter_imb_input - check the fields and write zint's input: "TRACKING-ROUTING", or
 * "TRACKING" alone when there is no routing ZIP. -EINVAL with the reason in err for a
 * field of the wrong length or with a non-digit; out is untouched then.
 */
int letter_imb_input(const struct letter_imb *imb, char out[LETTER_IMB_INPUT_MAX], char *err,
                     size_t err_size);

/* One letter. Strings are UTF-8; NULL and "" both mean absent. */
struct letter_input {
    const char *const *return_address; /* NULL-terminated lines: sender's name first */
    const char *name;                  /* the recipient */
    const char *address[5];            /* address1, address2, city, region, postal_code */
    const char *country;               /* ISO 3166-1 alpha-2; absent or US: domestic */
    const char *date;                  /* printed top right on page 1, as given */
    const char *body;                  /* the rendered letter.md, crier's Markdown subset */
    const struct letter_imb *imb;      /* NULL: no barcode (always none without windows) */
};

/*
 * letter_render - draw one letter into cr, starting on a fresh page of cr's target and
 * ending each page with cairo_show_page(), so that a batch can put many letters in one
 * PDF. A PDF target's page size is set from the layout. *ret_pages is the number of
 * pages used, the duplex blank page included. Errors: -EINVAL (bad layout, IMb field,
 * or string; why in err), -ENOSPC (an address does not fit its box even at
 * address_min_size), -EIO (cairo failed). Nothing is drawn on a validation error; on
 * -EIO the target is in an error state.
 */
int letter_render(cairo_t *cr, const struct letter_layout *layout, const struct letter_input *in,
                  int *ret_pages, char *err, size_t err_size);

/*
 * A letter cache keeps, for one layout, what is the same in many letters: each body block
 * (paragraph, heading, list item) shaped once by text, the return address, date and
 * footers; and, when made with forms, each block already seen in an earlier letter drawn
 * once as a cairo recording surface that a PDF target writes as one Form XObject and
 * every later page only references (as PDF/VT does for a print run's fixed parts). A
 * paragraph with a person's name in it differs by text, so it is shaped per letter; the
 * cache holds at most 128 blocks and drops those used only once when full.
 *
 * Output is the same as without a cache: the same lines at the same places, so text,
 * positions and glyphs read back identically; only the PDF's structure differs (forms).
 * Without forms even the bytes are identical (the fax channel relies on that: audit show
 * re-renders a fax with no cache and compares its SHA-256). One cache serves one thread.
 */
struct letter_cache;

/* letter_cache_new - an empty cache for letters in layout (copied). forms: draw shared
 * blocks as Form XObjects (batch PDFs); false: shape once, draw as usual (one PDF per
 * letter, where a form would only add bytes). */
struct letter_cache *letter_cache_new(const struct letter_layout *layout, bool forms);

/* letter_cache_free - NULL is fine. Call it after the PDF surfaces it drew into are
 * finished or destroyed. */
void letter_cache_free(struct letter_cache *cache);

/*
 * letter_font_families - the fonts letters and faxes are drawn in, newest first, ending in
 * NULL: [0] is letter_layout_default()'s, crier's own Crier Sans (DejaVu Sans without its
 * hinting: channels/sans_font.py), falling back to DejaVu Sans; the others are what an
 * earlier crier drew with. A fax's digest is of its PDF's bytes, so `crier audit show`
 * draws a fax again in each until one gives the recorded digest (docs/letters.md, "Fonts").
 */
extern const char *const letter_font_families[];

/* letter_fonts_dir - where crier's own fonts were found ($CRIER_FONTS_DIR if set, else
 * installed, else an uninstalled build's directory), or NULL: letters and faxes are then
 * drawn in the system's DejaVu Sans. */
const char *letter_fonts_dir(void);

/* letter_fonts_free - release the IMb's bar font, which letters share for the life of the
 * process. Only for a leak checker at exit (before cairo_debug_reset_static_data()), once
 * every PDF surface drawn to is finished; a letter drawn after it loads the font again. */
void letter_fonts_free(void);

/* letter_imb_rectangles - for tests: true draws every IMb as filled rectangles, the way
 * letter.c falls back when zint draws a bar the bar font lacks or the font cannot load;
 * false (the default) as glyphs of the bar font. Process-wide. */
void letter_imb_rectangles(bool on);

/* letter_render_cached - letter_render() in the cache's layout, reusing its shaping. */
int letter_render_cached(cairo_t *cr, struct letter_cache *cache, const struct letter_input *in,
                         int *ret_pages, char *err, size_t err_size);

/* letter_render_pdf_cached - letter_render_pdf() through a cache (see above: same bytes). */
int letter_render_pdf_cached(struct letter_cache *cache, const struct letter_input *in,
                             unsigned char **ret_pdf, size_t *ret_len, int *ret_pages, char *err,
                             size_t err_size);

/*
 * letter_markup_parse - the body's Markdown subset as letter_render reads it (blocks, then
 * each block's escaped Pango markup parsed), without laying anything out: for tests and
 * fuzzing. *ret_blocks is the number of blocks, *ret_text_bytes the bytes of text they
 * hold. -EINVAL (why in err) for invalid UTF-8 or markup Pango refuses.
 */
int letter_markup_parse(const char *body, size_t *ret_blocks, size_t *ret_text_bytes, char *err,
                        size_t err_size);

/*
 * letter_pdf_metadata - make a cairo PDF surface's bytes reproducible: its creation date
 * becomes date ("YYYY-MM-DD", midnight UTC) instead of the clock. -EINVAL for any other
 * form of date.
 */
int letter_pdf_metadata(cairo_surface_t *surface, const char *date);

/*
 * letter_render_pdf - one letter as a PDF document in memory (for fax, and for hashing).
 * in->date is required and is also the PDF's creation date, so that the same input
 * always gives the same bytes. *ret_pdf is malloc'd (free() it); errors as letter_render.
 */
int letter_render_pdf(const struct letter_layout *layout, const struct letter_input *in,
                      unsigned char **ret_pdf, size_t *ret_len, int *ret_pages, char *err,
                      size_t err_size);

#endif
