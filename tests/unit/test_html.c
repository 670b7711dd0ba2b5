/* test_html.c - html_escape, the one escaping function of crier serve: the five characters
 * that matter in text and quoted attributes, hostile names from a list, control characters
 * and bytes that are not UTF-8; html_url; html_json escapes keys and values alike and flags
 * lapsed holds; html_wrap escapes the value and writes the markup as it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crier/html.h"

struct escape_case {
    const char *in;
    const char *out;
};

static const struct escape_case cases[] = {
    {"", ""},
    {"Plain Person", "Plain Person"},
    {"<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"},
    {"<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"},
    {"\" onmouseover=\"x", "&quot; onmouseover=&quot;x"},
    {"O'Brien & Sons", "O&#39;Brien &amp; Sons"},
    {"&amp;", "&amp;amp;"},
    /* UTF-8 passes untouched: names are not ASCII */
    {"Zoë Ñúñez 李雷 😀", "Zoë Ñúñez 李雷 😀"},
    /* tab, newline and CR stay; other controls and DEL become U+FFFD */
    {"a\tb\nc\rd", "a\tb\nc\rd"},
    {"a\x01"
     "b\x1b[31mc\x7f",
     "a\xef\xbf\xbd"
     "b\xef\xbf\xbd[31mc\xef\xbf\xbd"},
    /* not UTF-8: a lone continuation byte, an overlong '<', a truncated sequence, a
     * surrogate; none may turn into markup */
    {"a\x80<", "a\xef\xbf\xbd&lt;"},
    {"\xc0\xbc"
     "script",
     "\xef\xbf\xbd\xef\xbf\xbdscript"},
    {"x\xe6\x9d", "x\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
};

static void test_escape(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = html_escaped(cases[i].in);
        if (strcmp(got, cases[i].out) != 0)
            fail_msg("case %zu: '%s' -> '%s', expected '%s'", i, cases[i].in, got, cases[i].out);
        free(got);
    }
    char *none = html_escaped(NULL);
    assert_string_equal(none, "");
    free(none);
}

static char *render(void (*fn)(FILE *, const char *), const char *text)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    fn(out, text);
    fclose(out);
    return buf;
}

static void test_url(void **state)
{
    char *got = render(html_url, "a b&c=\"<d>\"/é-_.~");
    assert_string_equal(got, "a%20b%26c%3D%22%3Cd%3E%22%2F%C3%A9-_.~");
    free(got);
}

static void test_wrap(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    html_wrap(out, "<td class=\"n\">", "<b>O'Brien</b>", "</td>");
    html_wrap(out, "<th>", NULL, "</th>\n");
    fclose(out);
    assert_string_equal(buf, "<td class=\"n\">&lt;b&gt;O&#39;Brien&lt;/b&gt;</td><th></th>\n");
    free(buf);
}

static char *render_json(const char *json)
{
    json_t *value = json_loads(json, 0, NULL);
    assert_non_null(value);
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    html_json(out, value);
    fclose(out);
    json_decref(value);
    return buf;
}

static void test_json(void **state)
{
    char *got = render_json("{\"<k>\": \"<v>\", \"n\": 3, \"t\": true, \"z\": null}");
    assert_non_null(strstr(got, "<dt>&lt;k&gt;</dt><dd>&lt;v&gt;</dd>"));
    assert_non_null(strstr(got, "<dd>3</dd>"));
    assert_non_null(strstr(got, "<dd>yes</dd>"));
    assert_null(strstr(got, "<v>"));
    free(got);
    got = render_json("[{\"id\": 1, \"name\": \"<script>x</script>\", \"lapsed\": true},"
                      " {\"id\": 2, \"name\": \"ok\", \"lapsed\": false}]");
    assert_non_null(strstr(got, "<th>name</th>"));
    assert_non_null(strstr(got, "<tr class=\"alert\"><td>1</td>"));
    assert_non_null(strstr(got, "<tr><td>2</td>"));
    assert_non_null(strstr(got, "&lt;script&gt;x&lt;/script&gt;"));
    assert_null(strstr(got, "<script>"));
    free(got);
    got = render_json("[\"<a>\", 2]");
    assert_string_equal(got, "<ul><li>&lt;a&gt;</li><li>2</li></ul>");
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_url),
        cmocka_unit_test(test_wrap),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
