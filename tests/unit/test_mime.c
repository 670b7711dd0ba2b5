/*
 * test_mime.c - the cache of encoded lines (engine/lib/mime.c) changes no byte: each text
 * is written as a whole message (CRLF, as the email channel writes it) through GMime's own
 * encoding and through the cache, three times (so that its recurring lines come from the
 * cache), and the bytes must be equal. The texts are the edges of quoted-printable (line
 * lengths around 76, trailing blanks, '=', non-ASCII across a soft break, no final line
 * end, "From " and dots) and the shipped email templates rendered for every jurisdiction
 * they have and for short, long and non-ASCII names.
 */
#include "crier/crier.h"
#include "crier/mime.h"
#include "crier/template.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* message_bytes - a message with one text part, or plain and html as alternatives, written
 * as build_message writes it. */
static char *message_bytes(const char *name, GMimeObject *plain, GMimeObject *rich)
{
    GMimeMessage *message = g_mime_message_new(TRUE);
    g_mime_message_add_mailbox(message, GMIME_ADDRESS_TYPE_TO, name, "someone@example.org");
    if (rich) {
        GMimeMultipart *alternative = g_mime_multipart_new_with_subtype("alternative");
        g_mime_multipart_set_boundary(alternative, "=-crier.1.1");
        g_mime_multipart_add(alternative, plain);
        g_mime_multipart_add(alternative, rich);
        g_mime_message_set_mime_part(message, GMIME_OBJECT(alternative));
        g_object_unref(alternative);
        g_object_unref(rich);
    } else {
        g_mime_message_set_mime_part(message, plain);
    }
    g_object_unref(plain);
    GMimeFormatOptions *options = g_mime_format_options_new();
    g_mime_format_options_set_newline_format(options, GMIME_NEWLINE_FORMAT_DOS);
    char *bytes = g_mime_object_to_string(GMIME_OBJECT(message), options);
    g_mime_format_options_free(options);
    g_object_unref(message);
    return bytes;
}

/* same_bytes - text (and html, may be NULL) through GMime alone and through cache. */
static void same_bytes(struct mime_qp_cache *cache, const char *name, const char *text,
                       const char *html)
{
    char *expected = message_bytes(name, mime_text_part("plain", text),
                                   html ? mime_text_part("html", html) : NULL);
    for (int round = 0; round < 3; round++) {
        char *got = message_bytes(name, mime_text_part_cached(cache, "plain", text),
                                  html ? mime_text_part_cached(cache, "html", html) : NULL);
        if (strcmp(expected, got) != 0)
            fail_msg("round %d differs for text [%s]:\n--- GMime\n%s\n--- cache\n%s", round, text,
                     expected, got);
        g_free(got);
    }
    g_free(expected);
}

static void test_edges(void **state)
{
    (void)state;
    char at75[80], at76[80], at77[80], long_line[400], accents[300];
    memset(at75, 'a', 75), at75[75] = '\0';
    memset(at76, 'b', 76), at76[76] = '\0';
    memset(at77, 'c', 77), at77[77] = '\0';
    memset(long_line, 'd', 399), long_line[399] = '\0';
    accents[0] = '\0';
    for (int i = 0; i < 70; i++)
        strcat(accents, i % 3 ? "x" : "\xc3\xa9"); /* é across the soft breaks */
    char *texts[] = {
        xstrdup(""),
        xstrdup("a"),
        xstrdup("a\n"),
        xstrdup("\n\n\n"),
        xstrdup("trailing blanks  \nand a tab\t\nand a last one \n"),
        xstrdup("no final line end  "),
        xasprintf("%s\n%s\n%s\n%s\n", at75, at76, at77, long_line),
        xasprintf("%s \n%s=\n%s", at75, at75, at76),
        xasprintf("%s\n%s\n", accents, accents),
        xstrdup("From here on\n.\n. a dot\n..\n=3D is not =\n"),
        xstrdup("Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m\n\xe5\xb1\xb1\xe7\x94\xb0 "
                "\xe5\xa4\xaa\xe9\x83\x8e\n"),
        xstrdup("carriage\r\nreturns\r\nand \r\n"),
    };
    struct mime_qp_cache *cache = mime_qp_cache_new();
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
        same_bytes(cache, "A", texts[i], NULL);
        same_bytes(cache, "A", texts[i], texts[(i + 1) % ARRAY_SIZE(texts)]);
    }
    struct mime_qp_stats stats = mime_qp_cache_stats(cache);
    assert_true(stats.hits > 0); /* the rounds after the first did use the cache */
    mime_qp_cache_free(cache);
    for (size_t i = 0; i < ARRAY_SIZE(texts); i++)
        free(texts[i]);
}

/* person_vars - what the shipped templates use, for one person. */
static json_t *person_vars(const char *name, const char *ref, bool delayed)
{
    json_t *vars = json_pack("{s:s, s:s, s:s, s:b}", "name", name, "ref", ref, "notice_date",
                             "2026-12-03", "delayed_for_law_enforcement", delayed);
    json_t *meta = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "organisation", "Ex\xc3\xa4mple & Co",
        "what_happened",
        "An unauthorised party copied a database of customer records between two backups "
        "of our billing system; the copy included names, addresses and, for some customers, "
        "account numbers.",
        "incident_date", "2026-10-01", "discovered_date", "2026-10-09", "information_involved",
        "Names, postal addresses, email addresses and account numbers.", "what_we_are_doing",
        "We closed the access, reset every credential, and engaged an outside firm.",
        "what_you_can_do", "Watch your statements.", "contact_phone", "1-800-555-0100",
        "contact_email", "help@example.org");
    json_object_set_new(vars, "meta", meta);
    return vars;
}

static char *render(const struct template_set *set, const char *name, const char *region, bool html,
                    const json_t *vars)
{
    const struct template *t = template_find(set, name, region);
    if (t == NULL)
        return NULL;
    char *text = NULL, err[512];
    size_t len;
    if (template_render(t, vars, html, &text, &len, err, sizeof(err)) < 0)
        fail_msg("%s: %s", name, err);
    return text;
}

static void test_templates(void **state)
{
    (void)state;
    const char *data = getenv("CRIER_TEST_DATA");
    assert_non_null(data);
    char *dir = xasprintf("%s/../../config/templates/default", data);
    struct template_set *set = NULL;
    assert_int_equal(template_set_load(dir, stderr, &set), 0);
    char long_name[600] = "";
    for (int i = 0; i < 20; i++)
        strcat(long_name, "Maximiliane-Sch\xc3\xb6nberg ");
    const char *names[] = {"Al",
                           "Jo Smith",
                           long_name,
                           "Zo\xc3\xab \xc3\x85ngstr\xc3\xb6m",
                           "\xe5\xb1\xb1\xe7\x94\xb0 \xe5\xa4\xaa\xe9\x83\x8e",
                           "A = B"};
    const char *regions[] = {NULL, "CA", "MA", "NY"};
    struct mime_qp_cache *cache = mime_qp_cache_new();
    for (int person = 0; person < 40; person++) {
        char ref[32];
        snprintf(ref, sizeof(ref), "REF-%05d", person * 7919);
        json_t *vars = person_vars(names[person % ARRAY_SIZE(names)], ref, person % 5 == 0);
        const char *region = regions[person % ARRAY_SIZE(regions)];
        char *text = render(set, "email.txt", region, false, vars);
        char *html = render(set, "email.html", region, true, vars);
        assert_non_null(text);
        same_bytes(cache, names[person % ARRAY_SIZE(names)], text, person % 2 ? html : NULL);
        free(text);
        free(html);
        json_decref(vars);
    }
    struct mime_qp_stats stats = mime_qp_cache_stats(cache);
    assert_true(stats.hits > 10 * stats.misses); /* the templates' fixed lines are shared */
    mime_qp_cache_free(cache);
    template_set_free(set);
    free(dir);
}

int main(void)
{
    mime_ready();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
